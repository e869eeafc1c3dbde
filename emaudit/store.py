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
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlmodel import Session

from emaudit.errors import EmauditError
from emaudit.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
SUPPORTED_SCHEMES = ("sqlite:///FILE", "postgresql://USER@HOST/DBNAME")
_MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: ``EMAUDIT_DATABASE_URL``).

    ``postgresql://`` URLs are routed to psycopg 3. On SQLite every connection gets WAL,
    ``busy_timeout`` and foreign keys, and transactions are begun explicitly so that
    :func:`write_session` can take the write lock up front (``BEGIN IMMEDIATE``).
    """
    parsed = parse_database_url(url or get_settings().database_url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # An unreachable host fails in seconds with one line instead of hanging on the OS's TCP timeout.
    kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
    return create_engine(parsed, **kwargs)


def parse_database_url(url: str) -> URL:
    """Parse a store URL, refusing what the store cannot use with one line naming what it can.

    Raises:
        EmauditError: the URL does not parse, or names a backend other than SQLite or PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise EmauditError(
            f"database URL {url!r} does not parse; use {' or '.join(SUPPORTED_SCHEMES)}"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql") or parsed.drivername == "postgresql+asyncpg":
        raise EmauditError(
            f"database URL scheme '{parsed.drivername}' is not supported; "
            f"use {' or '.join(SUPPORTED_SCHEMES)}"
        )
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


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
    """An engine on a database that is at the current schema (upgrading it when asked).

    Every CLI command opens the store here, so each gets the same one-line errors and none leaves
    an empty database file behind: without ``upgrade`` a missing SQLite file is an error (not
    created), and with it a file this call created is removed again if the migration fails.

    Raises:
        EmauditError: unsupported or malformed URL, missing SQLite file or folder, a server that
            cannot be reached, or a database at an older schema (without ``upgrade``).
    """
    parsed = parse_database_url(url or get_settings().database_url)
    shown = parsed.render_as_string(hide_password=True)
    file = _sqlite_file(parsed)
    created = file is not None and not file.exists()
    if file is not None:
        if not file.parent.is_dir():
            raise EmauditError(f"database {shown}: folder '{file.parent}' does not exist")
        if created and not upgrade:
            raise EmauditError(f"no database at {shown}: run 'emaudit init' to create it, or pass --db")
    engine = make_engine(parsed.render_as_string(hide_password=False))
    try:
        if upgrade:
            migrate(engine)
        else:
            require_current(engine)
    except exc.OperationalError as error:
        engine.dispose()
        raise EmauditError(f"cannot open database {shown}: {_first_line(error)}") from None
    except BaseException:
        engine.dispose()
        raise
    finally:
        if created and file is not None and upgrade and not _has_tables(file):
            for leftover in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
                leftover.unlink(missing_ok=True)
    return engine


def _first_line(error: exc.DBAPIError) -> str:
    """The driver's own message, first line only (SQLAlchemy appends the SQL and a link)."""
    message = str(error.orig) if error.orig is not None else str(error)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else type(error.orig or error).__name__


def _has_tables(file: Path) -> bool:
    """Whether a SQLite file holds a schema (so a failed ``init`` can tell its own empty file)."""
    import sqlite3

    if not file.exists():
        return False
    try:
        with sqlite3.connect(file) as connection:
            return connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    except sqlite3.Error:
        return True  # not ours to delete
