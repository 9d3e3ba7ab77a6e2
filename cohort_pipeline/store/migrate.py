"""Running the Alembic migrations from code.

The project ships no ``alembic.ini``: the configuration is built here, so ``CohortStore.migrate()`` works from
any working directory and in an installed package. For development, ``alembic_config(url)`` gives a
``Config`` usable with ``alembic.command`` (e.g. ``command.revision(cfg, autogenerate=True, message=...)``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from cohort_pipeline.store.engine import write_transaction

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

_PG_MIGRATION_LOCK_KEY = 0x636F686F7274  # "cohort": serialises concurrent migrate() calls on one database


def alembic_config(url: URL) -> Config:
    """An Alembic configuration pointing at this package's migration scripts and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats "%" as interpolation; escape it (it may appear in URL-encoded passwords)
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration shipped with this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` in one transaction.

    Concurrent callers (several processes starting at once) are serialised: by an advisory lock on PostgreSQL
    and by ``BEGIN IMMEDIATE`` on SQLite, so the second one finds the schema already current.
    """
    config = alembic_config(engine.url)
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK_KEY})")
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision`` (``"base"``: no tables). For development and tests."""
    config = alembic_config(engine.url)
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK_KEY})")
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
