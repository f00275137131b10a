"""The database handle: engine (SQLite or Postgres), transactions, migrations, readiness, test isolation."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from .schema import _sqlite_on_begin, _sqlite_on_connect, normalize_url, schema_version

# Any fixed 64-bit number: every process migrating the same Postgres database takes this one lock.
_MIGRATION_LOCK_KEY = 0x63686174626F74
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The hand-written migrations' versions (a `schema_version` table) and the Alembic revision each one is.
LEGACY_REVISIONS = {1: "0001"}


def alembic_config() -> Config:
    """Alembic's configuration for this package's migrations (no alembic.ini needed at run time)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _adopt_legacy(conn: Connection, context: MigrationContext, script: ScriptDirectory) -> None:
    """Stamp a database made by the hand-written migrations with the revision its version matches."""
    if not sa.inspect(conn).has_table(schema_version.name):
        return
    version = conn.scalar(sa.select(sa.func.max(schema_version.c.version))) or 0
    if version not in LEGACY_REVISIONS:
        raise RuntimeError(f"database schema is v{version}, newer than this code")
    context.stamp(script, LEGACY_REVISIONS[version])
    schema_version.drop(conn)


class UnsupportedDatabase(Exception):
    """The database cannot hold the app's data as it is (e.g. a Postgres database that is not UTF-8)."""


def _check_encoding(conn: Connection) -> None:
    """Refuse a Postgres database whose encoding is not UTF-8 (e.g. SQL_ASCII, what `initdb` makes under the C
    locale): it would neither check nor convert the text it stores, nor compare non-ASCII text as text."""
    encoding = conn.scalar(sa.text("SHOW server_encoding"))
    if encoding != "UTF8":
        name = conn.scalar(sa.text("SELECT current_database()"))
        raise UnsupportedDatabase(
            f"the Postgres database {name!r} uses the {encoding} encoding; ChatbotWS needs UTF8: create it with "
            f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0")


def _now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class Database:
    """The engine and its short transactions; the query mixins build on `_transaction`."""

    def __init__(self, url: str, *, echo: bool = False):
        """Create the engine (and a SQLite file's directory); the schema is left to migrate()."""
        url = normalize_url(url)
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        # SQLite takes one writer at a time. Writers of this process queue here, in turn, rather than in SQLite's busy
        # handler, which sleeps and retries: with many threads (ASYNC_MODE=threading) some lost every retry for the
        # whole busy timeout and failed with "database is locked". Other processes still wait in the busy handler.
        self._write_lock = threading.RLock() if self.dialect == "sqlite" else None
        if self.dialect == "sqlite":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(parsed, echo=echo)
            sa.event.listen(self.engine, "connect", _sqlite_on_connect)
            sa.event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            # The client side in UTF-8 whatever the database's encoding, so that a database this code refuses (see
            # _check_encoding) is refused in words rather than by a driver handing SQLAlchemy bytes for text.
            self.engine = sa.create_engine(parsed, echo=echo, pool_pre_ping=True,
                                           connect_args={"client_encoding": "utf8"})

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """Yield a connection inside a transaction that commits on success and rolls back on error."""
        with (self._write_lock if write and self._write_lock is not None else nullcontext()), \
                self.engine.connect() as conn:
            conn.execution_options(chatbot_write=write)
            with conn.begin():
                yield conn

    def migrate(self, target: str = "head") -> str:
        """Bring the schema to `target` (the newest revision by default) with Alembic, in one transaction, and
        return the revision it is at. A database made before Alembic (a `schema_version` table) is adopted."""
        config = alembic_config()
        script = ScriptDirectory.from_config(config)
        with self._transaction() as conn:
            if self.dialect == "postgresql":
                _check_encoding(conn)
                # Two processes starting at once: the second waits here, then finds nothing left to do.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
            context = MigrationContext.configure(conn)
            current = context.get_current_revision()
            if current is None:
                _adopt_legacy(conn, context, script)
            elif current not in {rev.revision for rev in script.walk_revisions()}:
                raise RuntimeError(f"database schema is at revision {current}, newer than this code")
            config.attributes["connection"] = conn
            command.upgrade(config, target)
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def ping(self) -> None:
        """Run a trivial query; raises when the database is unreachable (for readiness checks)."""
        with self._transaction(write=False) as conn:
            conn.execute(sa.text("SELECT 1"))


@contextmanager
def isolated_database(url: str) -> Iterator[str]:
    """Yield a URL to an empty database for one test: on Postgres a fresh schema, dropped afterwards.

    A SQLite URL is yielded unchanged (give it a fresh file, e.g. under tmp_path). Close any Store on the
    yielded URL before the block ends.
    """
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "postgresql":
        yield parsed.render_as_string(hide_password=False)
        return
    schema = f"test_{uuid.uuid4().hex}"
    admin = sa.create_engine(parsed, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        options = f"{parsed.query.get('options', '')} -csearch_path={schema}".strip()
        try:
            yield parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()
