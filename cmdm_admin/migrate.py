"""Alembic, driven from Python: upgrade, downgrade, current revisions.

Two branches share one Alembic history and one version table:

- "cmdm": the schema revisions, shipped in the package (cmdm_admin/migrations/versions);
- "rules": the rules revisions `cmdm deploy-rules` froze, in the project's
  migrations/versions; each `depends_on` the schema revision it was rendered against.

Each call runs all its migrations in one transaction (see cmdm_admin/migrations/env.py),
with the project's lock_timeout; a failure is turned into one `MigrationError` line and
leaves the database as it was. The project's folder is its migrations_dir unless
`migrations_dir` or $CMDM_MIGRATIONS_DIR names another (a copy with its own versions/, as
tests and `cmdm deploy-rules --migrations-dir` use).
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
from cmdm_admin.errors import CmdmError, DatabaseError, LockTimeoutError, MigrationError
from cmdm_admin.locks import LockWait, is_lock_timeout
from cmdm_admin.project import SETTINGS, current_project, find_project_root, schema_migrations_dir

# Not in schema cmdm: `downgrade base` drops that schema, and Alembic writes the version
# table after the last downgrade step.
VERSION_TABLE = "cmdm_alembic_version"
VERSION_TABLE_SCHEMA = "public"

#: Environment variable naming another folder holding versions/ than the project's.
MIGRATIONS_DIR_ENV = "CMDM_MIGRATIONS_DIR"
#: Environment variable overriding the project's lock_timeout for migrations.
LOCK_TIMEOUT_ENV = "CMDM_LOCK_TIMEOUT"


def resolve_migrations_dir(override: Path | str | None = None) -> Path | None:
    """The folder holding the rules revisions' versions/: `override`, else
    $CMDM_MIGRATIONS_DIR, else the project's; None outside any project (schema only)."""
    chosen = override or os.environ.get(MIGRATIONS_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    if find_project_root() is None:
        return None
    return current_project().migrations_dir


def lock_timeout() -> str:
    """$CMDM_LOCK_TIMEOUT, else the project's lock_timeout, else the default."""
    configured = os.environ.get(LOCK_TIMEOUT_ENV)
    if configured:
        return configured
    if find_project_root() is None:
        return SETTINGS["lock_timeout"]
    return current_project().lock_timeout


def alembic_config(database_url: str, migrations_dir: Path | str | None = None) -> Config:
    """Alembic's configuration, built here (no alembic.ini): env.py from the package, the
    schema branch from the package and the rules branch from the project."""
    config = Config()
    locations = [schema_migrations_dir() / "versions"]
    project_migrations = resolve_migrations_dir(migrations_dir)
    if project_migrations is not None:
        locations.append(project_migrations / "versions")
    # ConfigParser interpolates %, so a literal one is written %%.
    config.set_main_option("script_location", str(schema_migrations_dir()).replace("%", "%%"))
    config.set_main_option("path_separator", "newline")
    config.set_main_option(
        "version_locations", "\n".join(str(p).replace("%", "%%") for p in locations)
    )
    config.attributes["database_url"] = database_url
    config.attributes["lock_timeout"] = lock_timeout()
    return config


def upgrade(
    database_url: str, revision: str = "heads", migrations_dir: Path | str | None = None
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


def current_heads(database_url: str) -> tuple[str, ...]:
    """The revisions in the database's version table (one per branch head), sorted."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"version_table": VERSION_TABLE, "version_table_schema": VERSION_TABLE_SCHEMA},
            )
            return tuple(sorted(context.get_current_heads()))
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {mask_url(database_url)}: {first_line(exc.orig or exc)}"
        ) from exc
    finally:
        engine.dispose()


def script_directory(migrations_dir: Path | str | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused", migrations_dir))


def head_revisions(migrations_dir: Path | str | None = None) -> tuple[str, ...]:
    """The heads of the history on disk (schema branch and, in a project, rules branch)."""
    return tuple(sorted(script_directory(migrations_dir).get_heads()))


def schema_head() -> str:
    """The newest schema revision this cmdm ships (what a new rules revision depends on)."""
    return script_directory().get_revision("cmdm@head").revision


def applied_revisions(database_url: str, migrations_dir: Path | str | None = None) -> set[str]:
    """Every revision the database has applied: its heads and all they descend from or
    depend on."""
    heads = current_heads(database_url)
    if not heads:
        return set()
    script = script_directory(migrations_dir)
    try:
        return {r.revision for r in script.iterate_revisions(heads, "base") if r is not None}
    except CommandError as exc:
        raise MigrationError(
            f"the database is at {', '.join(heads)}, which this project's history lacks: {exc}",
            hint="run from the project that deployed it (or pass --migrations-dir)",
        ) from exc


def pending_revisions(database_url: str, migrations_dir: Path | str | None = None) -> list[str]:
    """The heads on disk that the database has not applied (empty: up to date)."""
    applied = applied_revisions(database_url, migrations_dir)
    return [h for h in head_revisions(migrations_dir) if h not in applied]


def _run(database_url: str, action, what: str, migrations_dir: Path | str | None = None) -> None:
    config = alembic_config(database_url, migrations_dir)
    try:
        action(config)
    except Exception as exc:
        # First: a lock timeout arrives wrapped in whatever the failing step raises (the
        # grants script's MigrationError, a revision's, SQLAlchemy's OperationalError).
        if is_lock_timeout(exc):
            raise lock_timeout_error(what, config) from exc
        if isinstance(exc, CmdmError):
            raise
        if isinstance(exc, CommandError):
            raise MigrationError(f"{what} failed: {exc}") from exc
        if isinstance(exc, OperationalError):
            raise DatabaseError(
                f"cannot connect to {mask_url(database_url)}: {first_line(exc.orig or exc)}",
                hint="check the URL and that the server runs",
            ) from exc
        if isinstance(exc, DBAPIError):
            raise MigrationError(
                f"{what} failed, nothing was changed: {first_line(exc.orig or exc)}"
            ) from exc
        raise


def lock_timeout_error(what: str, config: Config) -> LockTimeoutError:
    """One line saying what the migration waited for and who held it (the latest sighting
    of env.py's LockWatch), and what to do."""
    timeout = config.attributes.get("lock_timeout") or SETTINGS["lock_timeout"]
    watch = config.attributes.get("lock_watch")
    wait: LockWait | None = getattr(watch, "latest", None)
    waited = wait.describe() if wait else "a lock another session holds"
    if wait is not None and wait.locktype == "advisory":
        then = "run it again when the other one has finished"
    elif wait is not None and wait.blockers:
        then = f"run it again when the transaction of pid {wait.blockers[0].pid} has ended"
    else:
        then = (
            "find the session holding the lock (pg_locks, pg_stat_activity) and run it again "
            "when its transaction has ended"
        )
    return LockTimeoutError(
        f"{what} failed, nothing was changed: gave up after waiting {timeout} (lock_timeout) "
        f"for {waited}",
        hint=f"{then}, or raise lock_timeout (cmdm.toml, or ${LOCK_TIMEOUT_ENV})",
    )
