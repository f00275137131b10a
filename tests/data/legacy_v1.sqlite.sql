BEGIN TRANSACTION;
CREATE TABLE conversations (
	id VARCHAR(32) NOT NULL, 
	owner_id VARCHAR(32) NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(owner_id) REFERENCES owners (id) ON DELETE CASCADE
);
INSERT INTO "conversations" VALUES('534c6ea72da34f5aa872371a2d41ec10','aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','First chat','2026-12-01 20:18:44.791645','2026-12-01 20:18:44.898279');
INSERT INTO "conversations" VALUES('b010bd686cd44ca1aa6880e3a0064c7e','aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','user 0 in b010bd — ünïcode ✓','2026-12-01 20:18:44.805445','2026-12-01 20:18:44.964870');
INSERT INTO "conversations" VALUES('c1ed277d2df54ac3971e9f394b907b96','bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb','Someone else''s','2026-12-01 20:18:44.808913','2026-12-01 20:18:44.950305');
CREATE TABLE messages (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	conversation_id VARCHAR(32) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	content TEXT NOT NULL, 
	reasoning TEXT, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	client_id VARCHAR(100), 
	usage JSON, 
	finish_reason VARCHAR(32), 
	error_code VARCHAR(64), 
	CONSTRAINT uq_messages_conversation_client UNIQUE (conversation_id, client_id), 
	FOREIGN KEY(conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
);
INSERT INTO "messages" VALUES(1,'534c6ea72da34f5aa872371a2d41ec10','user','user 0 in 534c6e — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.825089','2026-12-01 20:18:44.825089','cid-534c-0',NULL,NULL,NULL);
INSERT INTO "messages" VALUES(2,'534c6ea72da34f5aa872371a2d41ec10','assistant','assistant 1 in 534c6e — ünïcode ✓','thought','complete','2026-12-01 20:18:44.849197','2026-12-01 20:18:44.861936',NULL,'{"completion_tokens": 1}','stop',NULL);
INSERT INTO "messages" VALUES(3,'534c6ea72da34f5aa872371a2d41ec10','user','user 2 in 534c6e — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.869079','2026-12-01 20:18:44.869079','cid-534c-2',NULL,NULL,NULL);
INSERT INTO "messages" VALUES(4,'534c6ea72da34f5aa872371a2d41ec10','assistant','assistant 3 in 534c6e — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.877045','2026-12-01 20:18:44.885712',NULL,'{"completion_tokens": 3}','stop',NULL);
INSERT INTO "messages" VALUES(5,'534c6ea72da34f5aa872371a2d41ec10','user','user 4 in 534c6e — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.893008','2026-12-01 20:18:44.893008','cid-534c-4',NULL,NULL,NULL);
INSERT INTO "messages" VALUES(6,'534c6ea72da34f5aa872371a2d41ec10','assistant','assistant 5 in 534c6e — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.898279','2026-12-01 20:18:44.901902',NULL,'{"completion_tokens": 5}','stop',NULL);
INSERT INTO "messages" VALUES(7,'b010bd686cd44ca1aa6880e3a0064c7e','user','user 0 in b010bd — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.905728','2026-12-01 20:18:44.905728','cid-b010-0',NULL,NULL,NULL);
INSERT INTO "messages" VALUES(8,'b010bd686cd44ca1aa6880e3a0064c7e','assistant','assistant 1 in b010bd — ünïcode ✓','thought','complete','2026-12-01 20:18:44.917137','2026-12-01 20:18:44.929824',NULL,'{"completion_tokens": 1}','stop',NULL);
INSERT INTO "messages" VALUES(9,'b010bd686cd44ca1aa6880e3a0064c7e','user','user 2 in b010bd — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.932981','2026-12-01 20:18:44.932981','cid-b010-2',NULL,NULL,NULL);
INSERT INTO "messages" VALUES(10,'c1ed277d2df54ac3971e9f394b907b96','user','user 0 in c1ed27 — ünïcode ✓',NULL,'complete','2026-12-01 20:18:44.940991','2026-12-01 20:18:44.940991','cid-c1ed-0',NULL,NULL,NULL);
INSERT INTO "messages" VALUES(11,'c1ed277d2df54ac3971e9f394b907b96','assistant','assistant 1 in c1ed27 — ünïcode ✓','thought','complete','2026-12-01 20:18:44.950305','2026-12-01 20:18:44.962142',NULL,'{"completion_tokens": 1}','stop',NULL);
INSERT INTO "messages" VALUES(12,'b010bd686cd44ca1aa6880e3a0064c7e','assistant','partial',NULL,'interrupted','2026-12-01 20:18:44.964870','2026-12-01 20:18:44.973775',NULL,NULL,NULL,NULL);
CREATE TABLE owners (
	id VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_seen_at DATETIME NOT NULL, 
	active_conversation_id VARCHAR(32), 
	PRIMARY KEY (id)
);
INSERT INTO "owners" VALUES('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','2026-12-01 20:18:44.777128','2026-12-01 20:18:44.777128','534c6ea72da34f5aa872371a2d41ec10');
INSERT INTO "owners" VALUES('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb','2026-12-01 20:18:44.789130','2026-12-01 20:18:44.789130',NULL);
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at DATETIME NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "schema_version" VALUES(1,'2026-12-01 20:18:44.754819');
CREATE INDEX ix_owners_last_seen_at ON owners (last_seen_at);
CREATE INDEX ix_conversations_owner_updated ON conversations (owner_id, updated_at);
CREATE INDEX ix_messages_conversation_id ON messages (conversation_id, id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('messages',12);
COMMIT;