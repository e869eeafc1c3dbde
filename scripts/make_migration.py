"""Write a new alembic migration for changes made to ``emaudit/models.py``.

Usage: ``python scripts/make_migration.py "add rater quota" 0002``

It upgrades a scratch SQLite database to the current head and autogenerates the difference
between that schema and the models. Review the file before committing; ``tests/test_store.py``
fails while models and migrations disagree.
"""

from __future__ import annotations

import sys
import tempfile

from alembic import command

from emaudit.store import _alembic_config, make_engine, migrate


def main() -> None:
    message = sys.argv[1]
    rev_id = sys.argv[2] if len(sys.argv) > 2 else None
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        migrate(engine)
        with engine.begin() as connection:
            command.revision(_alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
