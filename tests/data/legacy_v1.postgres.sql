--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: {schema}; Type: SCHEMA; Schema: -; Owner: -
--



SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: conversations; Type: TABLE; Schema: {schema}; Owner: -
--

CREATE TABLE {schema}.conversations (
    id character varying(32) NOT NULL,
    owner_id character varying(32) NOT NULL,
    title character varying(200) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: messages; Type: TABLE; Schema: {schema}; Owner: -
--

CREATE TABLE {schema}.messages (
    id integer NOT NULL,
    conversation_id character varying(32) NOT NULL,
    role character varying(16) NOT NULL,
    content text NOT NULL,
    reasoning text,
    status character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    client_id character varying(100),
    usage json,
    finish_reason character varying(32),
    error_code character varying(64)
);


--
-- Name: messages_id_seq; Type: SEQUENCE; Schema: {schema}; Owner: -
--

CREATE SEQUENCE {schema}.messages_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: messages_id_seq; Type: SEQUENCE OWNED BY; Schema: {schema}; Owner: -
--

ALTER SEQUENCE {schema}.messages_id_seq OWNED BY {schema}.messages.id;


--
-- Name: owners; Type: TABLE; Schema: {schema}; Owner: -
--

CREATE TABLE {schema}.owners (
    id character varying(32) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_seen_at timestamp with time zone NOT NULL,
    active_conversation_id character varying(32)
);


--
-- Name: schema_version; Type: TABLE; Schema: {schema}; Owner: -
--

CREATE TABLE {schema}.schema_version (
    version integer NOT NULL,
    applied_at timestamp with time zone NOT NULL
);


--
-- Name: messages id; Type: DEFAULT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.messages ALTER COLUMN id SET DEFAULT nextval('{schema}.messages_id_seq'::regclass);


--
-- Data for Name: conversations; Type: TABLE DATA; Schema: {schema}; Owner: -
--

INSERT INTO {schema}.conversations VALUES ('80934db70e78473ba1434707c7c12bc8', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'First chat', '2026-12-01 20:18:55.638103+00', '2026-12-01 20:18:55.806642+00');
INSERT INTO {schema}.conversations VALUES ('f22a17c33e4e47d6a5d736e0f92e2bf8', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'Someone else''s', '2026-12-01 20:18:55.652853+00', '2026-12-01 20:18:55.891949+00');
INSERT INTO {schema}.conversations VALUES ('07d50e64ead349a999e398bf6c03d57b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'user 0 in 07d50e — ünïcode ✓', '2026-12-01 20:18:55.646884+00', '2026-12-01 20:18:55.916357+00');


--
-- Data for Name: messages; Type: TABLE DATA; Schema: {schema}; Owner: -
--

INSERT INTO {schema}.messages VALUES (1, '80934db70e78473ba1434707c7c12bc8', 'user', 'user 0 in 80934d — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.673293+00', '2026-12-01 20:18:55.673293+00', 'cid-8093-0', NULL, NULL, NULL);
INSERT INTO {schema}.messages VALUES (2, '80934db70e78473ba1434707c7c12bc8', 'assistant', 'assistant 1 in 80934d — ünïcode ✓', 'thought', 'complete', '2026-12-01 20:18:55.722744+00', '2026-12-01 20:18:55.744456+00', NULL, '{"completion_tokens": 1}', 'stop', NULL);
INSERT INTO {schema}.messages VALUES (3, '80934db70e78473ba1434707c7c12bc8', 'user', 'user 2 in 80934d — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.752266+00', '2026-12-01 20:18:55.752266+00', 'cid-8093-2', NULL, NULL, NULL);
INSERT INTO {schema}.messages VALUES (4, '80934db70e78473ba1434707c7c12bc8', 'assistant', 'assistant 3 in 80934d — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.769235+00', '2026-12-01 20:18:55.783576+00', NULL, '{"completion_tokens": 3}', 'stop', NULL);
INSERT INTO {schema}.messages VALUES (5, '80934db70e78473ba1434707c7c12bc8', 'user', 'user 4 in 80934d — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.78826+00', '2026-12-01 20:18:55.78826+00', 'cid-8093-4', NULL, NULL, NULL);
INSERT INTO {schema}.messages VALUES (6, '80934db70e78473ba1434707c7c12bc8', 'assistant', 'assistant 5 in 80934d — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.806642+00', '2026-12-01 20:18:55.826271+00', NULL, '{"completion_tokens": 5}', 'stop', NULL);
INSERT INTO {schema}.messages VALUES (7, '07d50e64ead349a999e398bf6c03d57b', 'user', 'user 0 in 07d50e — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.831504+00', '2026-12-01 20:18:55.831504+00', 'cid-07d5-0', NULL, NULL, NULL);
INSERT INTO {schema}.messages VALUES (8, '07d50e64ead349a999e398bf6c03d57b', 'assistant', 'assistant 1 in 07d50e — ünïcode ✓', 'thought', 'complete', '2026-12-01 20:18:55.845033+00', '2026-12-01 20:18:55.857694+00', NULL, '{"completion_tokens": 1}', 'stop', NULL);
INSERT INTO {schema}.messages VALUES (9, '07d50e64ead349a999e398bf6c03d57b', 'user', 'user 2 in 07d50e — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.860373+00', '2026-12-01 20:18:55.860373+00', 'cid-07d5-2', NULL, NULL, NULL);
INSERT INTO {schema}.messages VALUES (10, 'f22a17c33e4e47d6a5d736e0f92e2bf8', 'user', 'user 0 in f22a17 — ünïcode ✓', NULL, 'complete', '2026-12-01 20:18:55.87598+00', '2026-12-01 20:18:55.87598+00', 'cid-f22a-0', NULL, NULL, NULL);
INSERT INTO {schema}.messages VALUES (11, 'f22a17c33e4e47d6a5d736e0f92e2bf8', 'assistant', 'assistant 1 in f22a17 — ünïcode ✓', 'thought', 'complete', '2026-12-01 20:18:55.891949+00', '2026-12-01 20:18:55.906798+00', NULL, '{"completion_tokens": 1}', 'stop', NULL);
INSERT INTO {schema}.messages VALUES (12, '07d50e64ead349a999e398bf6c03d57b', 'assistant', 'partial', NULL, 'interrupted', '2026-12-01 20:18:55.916357+00', '2026-12-01 20:18:55.924077+00', NULL, NULL, NULL, NULL);


--
-- Data for Name: owners; Type: TABLE DATA; Schema: {schema}; Owner: -
--

INSERT INTO {schema}.owners VALUES ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', '2026-12-01 20:18:55.630098+00', '2026-12-01 20:18:55.630098+00', NULL);
INSERT INTO {schema}.owners VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '2026-12-01 20:18:55.621315+00', '2026-12-01 20:18:55.621315+00', '80934db70e78473ba1434707c7c12bc8');


--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: {schema}; Owner: -
--

INSERT INTO {schema}.schema_version VALUES (1, '2026-12-01 20:18:55.609612+00');


--
-- Name: messages_id_seq; Type: SEQUENCE SET; Schema: {schema}; Owner: -
--

SELECT pg_catalog.setval('{schema}.messages_id_seq', 12, true);


--
-- Name: conversations conversations_pkey; Type: CONSTRAINT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.conversations
    ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);


--
-- Name: messages messages_pkey; Type: CONSTRAINT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);


--
-- Name: owners owners_pkey; Type: CONSTRAINT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.owners
    ADD CONSTRAINT owners_pkey PRIMARY KEY (id);


--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (version);


--
-- Name: messages uq_messages_conversation_client; Type: CONSTRAINT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.messages
    ADD CONSTRAINT uq_messages_conversation_client UNIQUE (conversation_id, client_id);


--
-- Name: ix_conversations_owner_updated; Type: INDEX; Schema: {schema}; Owner: -
--

CREATE INDEX ix_conversations_owner_updated ON {schema}.conversations USING btree (owner_id, updated_at);


--
-- Name: ix_messages_conversation_id; Type: INDEX; Schema: {schema}; Owner: -
--

CREATE INDEX ix_messages_conversation_id ON {schema}.messages USING btree (conversation_id, id);


--
-- Name: ix_owners_last_seen_at; Type: INDEX; Schema: {schema}; Owner: -
--

CREATE INDEX ix_owners_last_seen_at ON {schema}.owners USING btree (last_seen_at);


--
-- Name: conversations conversations_owner_id_fkey; Type: FK CONSTRAINT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.conversations
    ADD CONSTRAINT conversations_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES {schema}.owners(id) ON DELETE CASCADE;


--
-- Name: messages messages_conversation_id_fkey; Type: FK CONSTRAINT; Schema: {schema}; Owner: -
--

ALTER TABLE ONLY {schema}.messages
    ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES {schema}.conversations(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--


