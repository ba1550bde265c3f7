"""Alembic, driven from Python: upgrade, downgrade, current revision.

Each call runs all its migrations in one transaction (see migrations/env.py); a failure is
turned into one `MigrationError` line and leaves the database as it was.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import DBAPIError, OperationalError

from cmdm_admin.db import first_line, mask_url, sqlalchemy_url
from cmdm_admin.errors import CmdmError, DatabaseError, MigrationError
from cmdm_admin.project import project_dir

# Not in schema cmdm: `downgrade base` drops that schema, and Alembic writes the version
# table after the last downgrade step.
VERSION_TABLE = "cmdm_alembic_version"
VERSION_TABLE_SCHEMA = "public"


def alembic_config(database_url: str) -> Config:
    config = Config(str(project_dir() / "alembic.ini"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    _run(database_url, lambda cfg: command.upgrade(cfg, revision), f"upgrade to {revision}")


def downgrade(database_url: str, revision: str) -> None:
    _run(database_url, lambda cfg: command.downgrade(cfg, revision), f"downgrade to {revision}")


def current_revision(database_url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {mask_url(database_url)}: {first_line(exc.orig or exc)}"
        ) from exc
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def _run(database_url: str, action, what: str) -> None:
    try:
        action(alembic_config(database_url))
    except CmdmError:
        raise
    except CommandError as exc:
        raise MigrationError(f"{what} failed: {exc}") from exc
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {mask_url(database_url)}: {first_line(exc.orig or exc)}",
            hint="check the URL and that the server runs",
        ) from exc
    except DBAPIError as exc:
        raise MigrationError(
            f"{what} failed, nothing was changed: {first_line(exc.orig or exc)}"
        ) from exc
