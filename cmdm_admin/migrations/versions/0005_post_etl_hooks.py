"""Tables of the post-ETL hooks (DESIGN §7): the per-transaction queue and backfill runs.

`cmdm.hook_queue` holds, for a transaction still in progress, the months whose facts it
changed and the dates of the events (awards, losses) it changed: the statement triggers
on the input tables add rows (one per month, however many statements the load used), and
a deferred constraint trigger on this table runs the hooks once at commit and empties
it. Its rows never outlive their transaction, so the table is UNLOGGED: nothing in it
needs crash safety or a replica.

`cmdm.backfill_run` records each `cmdm backfill`, so an interrupted one resumes where it
stopped: its hook runs carry its id (`cmdm.hook_run.backfill_id`).

Revision ID: 0005_post_etl_hooks
Revises: 0004_snapshot_writes
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0005_post_etl_hooks"
down_revision = "0004_snapshot_writes"
branch_labels = None
depends_on = None

TABLES = ("cmdm.hook_queue", "cmdm.backfill_run")


def upgrade() -> None:
    op.execute(
        """
        CREATE UNLOGGED TABLE cmdm.hook_queue (
            txid    xid8 NOT NULL DEFAULT pg_current_xact_id(),
            domain  text NOT NULL,
            kind    text NOT NULL CHECK (kind IN ('facts', 'event')),
            period  date NOT NULL,
            PRIMARY KEY (txid, domain, kind, period)
        );
        COMMENT ON TABLE cmdm.hook_queue IS
            'Months (kind facts) and event dates (kind event) changed by a transaction in '
            'progress; processed and emptied at its commit by the post-ETL hooks.';

        CREATE TABLE cmdm.backfill_run (
            backfill_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            domain       text NOT NULL REFERENCES cmdm.hook_domain (domain),
            from_period  date NOT NULL,
            to_period    date NOT NULL,
            started_at   timestamptz NOT NULL DEFAULT now(),
            finished_at  timestamptz,
            started_by   text NOT NULL DEFAULT session_user,
            CHECK (from_period <= to_period)
        );
        COMMENT ON TABLE cmdm.backfill_run IS
            'One row per cmdm backfill; unfinished rows are resumed by the next backfill '
            'of the same domain and range.';

        ALTER TABLE cmdm.hook_run
            ADD COLUMN backfill_id bigint REFERENCES cmdm.backfill_run (backfill_id);
        """
    )
    for table in TABLES:
        op.execute(
            text(
                "INSERT INTO cmdm.managed_object (object_type, object_identity, created_by) "
                "VALUES ('table', :identity, :revision)"
            ).bindparams(identity=table, revision=revision)
        )


def downgrade() -> None:
    op.execute("ALTER TABLE cmdm.hook_run DROP COLUMN IF EXISTS backfill_id")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
        op.execute(
            text(
                "DELETE FROM cmdm.managed_object "
                "WHERE object_type = 'table' AND object_identity = :identity"
            ).bindparams(identity=table)
        )
