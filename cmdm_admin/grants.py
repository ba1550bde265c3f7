"""Roles, ownership and grants: one idempotent script, applied after every upgrade.

Keeping every GRANT in one place (pgstac's rule) means no migration grants inline and a
privilege drift is repaired by the next deploy. The script is skipped when the database is
below the base revision (after `downgrade base` there is nothing to grant on).
"""

from __future__ import annotations

import psycopg
from sqlalchemy import Connection, text

from cmdm_admin.db import first_line
from cmdm_admin.errors import MigrationError
from cmdm_admin.project import PACKAGE_DIR

SCRIPT = "sql/idempotent/roles_and_grants.sql"  # in the package


def roles_and_grants_sql() -> str:
    return (PACKAGE_DIR / SCRIPT).read_text(encoding="utf-8")


def apply_roles_and_grants(connection: Connection) -> bool:
    """Run the script on `connection` (inside its transaction); False when skipped."""
    installed = connection.execute(
        text("SELECT to_regclass('cmdm.managed_object') IS NOT NULL")
    ).scalar_one()
    if not installed:
        return False
    # Straight to the driver, without parameters: the script's format('%I') must reach
    # the server untouched, and psycopg runs a multi-statement script in one call.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(roles_and_grants_sql())
    except psycopg.Error as exc:
        raise MigrationError(
            f"{SCRIPT} failed, nothing was changed: {first_line(exc)}",
            hint="the migrating role needs CREATEROLE and the right to grant on the input tables",
        ) from exc
    finally:
        cursor.close()
    return True
