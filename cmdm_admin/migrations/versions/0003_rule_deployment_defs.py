"""Record what each deployed function looked like, so a hand edit in the database shows.

A rules revision stores, per function it creates, the sha256 of `pg_get_functiondef(oid)`
taken right after creating it (computed with search_path = pg_catalog, so the text does not
depend on the session). `cmdm deploy-rules --check` computes it again and names every
function whose definition no longer matches: someone ran CREATE OR REPLACE by hand.
(Revision ids stay within 32 characters: Alembic's version_num column is varchar(32).)

Revision ID: 0003_rule_deployment_defs
Revises: 0002_contract_sync_support
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003_rule_deployment_defs"
down_revision = "0002_contract_sync_support"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE cmdm.rule_deployment
            ADD COLUMN function_defs jsonb NOT NULL DEFAULT '{}'
                CHECK (jsonb_typeof(function_defs) = 'object');
        COMMENT ON COLUMN cmdm.rule_deployment.function_defs IS
            'identity -> sha256 of pg_get_functiondef(oid) right after the deploy created it '
            '(search_path = pg_catalog); deploy-rules --check compares it with the database.';
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE cmdm.rule_deployment DROP COLUMN IF EXISTS function_defs")
