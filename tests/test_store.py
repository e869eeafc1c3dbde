"""The store: migrations match the models, SQLite pragmas, upgrade never drops data."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, SQLModel, select

import emaudit.models as m
from emaudit.store import current_revision, head_revision, make_engine, migrate, write_session


def test_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations disagree; run scripts/make_migration.py: {diff}"
    assert current_revision(engine) == head_revision()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), Session(engine) as session:
        session.add(m.Response(condition_id=999, question_id=999, sample_index=0))
        session.commit()


def test_upgrade_keeps_existing_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    with Session(engine) as session:
        session.add(m.Question(question_set="s", key="k", text="What now?"))
        session.commit()
    migrate(engine)  # running init again is an upgrade to the same head: a no-op
    with Session(engine) as session:
        assert [q.text for q in session.exec(select(m.Question))] == ["What now?"]
    assert set(inspect(engine).get_table_names()) >= {"question", "response", "judgescore", "alembic_version"}
    engine.dispose()


def test_write_session_rolls_back_on_error(engine: Engine) -> None:
    import pytest

    with pytest.raises(RuntimeError), write_session(engine) as session:
        session.add(m.Question(question_set="s", key="k", text="t"))
        session.flush()
        raise RuntimeError("boom")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM question")).scalar() == 0


def test_condition_key_ignores_order_and_defaults() -> None:
    a = m.condition_key({"model": "x", "n_shots": 0, "extra": {"b": 1, "a": 2}})
    b = m.condition_key({"extra": {"a": 2, "b": 1}, "instruction": "none", "model": "x"})
    assert a == b == '{"a":2,"b":1,"model":"x"}'
