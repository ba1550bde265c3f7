"""Alembic, driven from Python: upgrade, downgrade, current revision.

Each call runs all its migrations in one transaction (see migrations/env.py); a failure is
turned into one `MigrationError` line and leaves the database as it was. The Alembic folder
is migrations/ of the checkout unless `migrations_dir` or $CMDM_MIGRATIONS_DIR names another
(a copy with its own versions/, as tests and `cmdm deploy-rules --migrations-dir` use).
"""

from __future__ import annotations

import os
from pathlib import Path

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

#: Environment variable naming another Alembic folder (env.py + versions/) than migrations/.
MIGRATIONS_DIR_ENV = "CMDM_MIGRATIONS_DIR"


def resolve_migrations_dir(override: Path | str | None = None) -> Path:
    """The Alembic folder: `override`, else $CMDM_MIGRATIONS_DIR, else <project>/migrations."""
    chosen = override or os.environ.get(MIGRATIONS_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    return project_dir() / "migrations"


def alembic_config(database_url: str, migrations_dir: Path | str | None = None) -> Config:
    config = Config(str(project_dir() / "alembic.ini"))
    # ConfigParser interpolates %, so a literal one is written %%.
    location = str(resolve_migrations_dir(migrations_dir)).replace("%", "%%")
    config.set_main_option("script_location", location)
    config.attributes["database_url"] = database_url
    return config


def upgrade(
    database_url: str, revision: str = "head", migrations_dir: Path | str | None = None
) -> None:
    _run(
        database_url,
        lambda cfg: command.upgrade(cfg, revision),
        f"upgrade to {revision}",
        migrations_dir,
    )


def downgrade(database_url: str, revision: str, migrations_dir: Path | str | None = None) -> None:
    _run(
        database_url,
        lambda cfg: command.downgrade(cfg, revision),
        f"downgrade to {revision}",
        migrations_dir,
    )


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


def head_revision(migrations_dir: Path | str | None = None) -> str | None:
    config = alembic_config("postgresql://unused", migrations_dir)
    return ScriptDirectory.from_config(config).get_current_head()


def _run(database_url: str, action, what: str, migrations_dir: Path | str | None = None) -> None:
    try:
        action(alembic_config(database_url, migrations_dir))
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
