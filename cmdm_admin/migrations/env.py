"""Alembic environment for cmdm.

The URL comes from the caller (cmdm passes it in `config.attributes`), from
`alembic -x database_url=...`, or from the usual resolution ($CMDM_DATABASE_URL, else the
embedded cluster). All migrations of one `upgrade`/`downgrade` run in one transaction, and so
does the idempotent roles-and-grants script that follows every upgrade: either everything
lands or nothing does. The transaction waits for any lock at most `lock_timeout` (the
project's, passed in `config.attributes`); a LockWatch notes what it waits for, so that a
timeout can name the lock and its holder (cmdm_admin/locks.py, migrate.lock_timeout_error).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from cmdm_admin.db import resolve_database_url, sqlalchemy_url
from cmdm_admin.grants import apply_roles_and_grants
from cmdm_admin.locks import watch_locks
from cmdm_admin.migrate import VERSION_TABLE, VERSION_TABLE_SCHEMA

config = context.config


def database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    return resolve_database_url(context.get_x_argument(as_dictionary=True).get("database_url"))


def run_migrations_offline() -> None:
    context.configure(
        url=sqlalchemy_url(database_url()),
        literal_binds=True,
        version_table=VERSION_TABLE,
        version_table_schema=VERSION_TABLE_SCHEMA,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(sqlalchemy_url(database_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            version_table=VERSION_TABLE,
            version_table_schema=VERSION_TABLE_SCHEMA,
            transactional_ddl=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            # A migration queued behind a long ETL transaction would stall every query on
            # the table queued behind it: give up after the project's lock_timeout instead.
            connection.execute(
                text("SELECT set_config('lock_timeout', :timeout, true)"),
                {"timeout": config.attributes.get("lock_timeout", "5s")},
            )
            pid, timeout_ms = connection.execute(
                text(
                    "SELECT pg_backend_pid(), setting::int FROM pg_settings "
                    "WHERE name = 'lock_timeout'"
                )
            ).one()
            # What it waited for, should it give up: migrate._run names it (cmdm_admin/locks.py).
            with watch_locks(database_url(), pid, timeout_ms) as watch:
                config.attributes["lock_watch"] = watch
                # Two deploys at once would interleave DDL; the second waits for the first
                # (up to lock_timeout, like any lock).
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('cmdm:migrate'))"))
                context.run_migrations()
                apply_roles_and_grants(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
