"""Support for the set-based contract sync: two indexes on customer.customer_plan_contract.

customer.sync_contract_status(month) starts from the versions that cover the month or end
at it: `daterange(valid_from, valid_to, '[]') @> month_end`. The exclusion constraint's
GiST index leads with the key columns and cannot answer that without the key; this one
answers it in time proportional to the versions found, wherever the month lies in the
history.

A key new in a month takes its annual statuses from a version of the same company in the
same year when there is one: `(company_id, status_year)` finds it with one index probe.

Revision ID: 0002_contract_sync_support
Revises: 0001_base_schema
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002_contract_sync_support"
down_revision = "0001_base_schema"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE INDEX idx_contract_validity
            ON customer.customer_plan_contract
         USING gist (daterange(valid_from, valid_to, '[]'))
        """
    )
    op.execute(
        """
        CREATE INDEX idx_contract_company_year
            ON customer.customer_plan_contract (company_id, status_year)
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS customer.idx_contract_company_year")
    op.execute("DROP INDEX IF EXISTS customer.idx_contract_validity")
