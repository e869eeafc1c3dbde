"""Engine, migrations and transactions for the store.

SQLite is the embedded default (WAL, busy timeout, foreign keys on every connection); PostgreSQL
(psycopg 3) is the multi-user backend. The schema is created and upgraded only by alembic, so a
database made by an older release is upgraded in place, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from emaudit.errors import EmauditError
from emaudit.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
_MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: ``EMAUDIT_DATABASE_URL``).

    ``postgresql://`` URLs are routed to psycopg 3. On SQLite every connection gets WAL,
    ``busy_timeout`` and foreign keys, and transactions are begun explicitly so that
    :func:`write_session` can take the write lock up front (``BEGIN IMMEDIATE``).
    """
    url = url or get_settings().database_url
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling would BEGIN lazily and defer the write lock; we issue
    # BEGIN ourselves (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses at most the last commit
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk imports touch large unique indexes
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def is_sqlite(engine: Engine) -> bool:
    """Whether ``engine`` talks to SQLite (which needs ``BEGIN IMMEDIATE`` instead of row locks)."""
    return engine.dialect.name == "sqlite"


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction takes the write lock at once and commits on success.

    On SQLite this is ``BEGIN IMMEDIATE``, so read-then-write sequences (claiming a queue item)
    cannot interleave; on PostgreSQL it is an ordinary transaction and callers use
    ``SELECT ... FOR UPDATE SKIP LOCKED``.
    """
    with engine.connect() as connection:
        if is_sqlite(engine):
            connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with Session(bind=connection) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (alembic ``upgrade``); a no-op when already there."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The alembic revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this release knows."""
    head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def require_current(engine: Engine) -> None:
    """Fail with a clear message unless the database is at the newest schema."""
    current = current_revision(engine)
    if current != head_revision():
        hint = "run 'emaudit init'" if current is None else "run 'emaudit init' to upgrade it"
        raise EmauditError(
            f"database {engine.url.render_as_string(hide_password=True)} is at schema "
            f"{current or 'none'}, expected {head_revision()}: {hint}"
        )


def open_store(url: str | None = None, *, upgrade: bool = False) -> Engine:
    """An engine on a database that is at the current schema (upgrading it when asked)."""
    engine = make_engine(url)
    if upgrade:
        migrate(engine)
    else:
        require_current(engine)
    return engine
