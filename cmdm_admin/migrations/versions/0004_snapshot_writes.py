"""The snapshot tables lose their foreign keys: they are derived rows, written only by
customer.refresh_monthly_snapshot (SECURITY DEFINER) from contract versions, whose own
foreign keys already guarantee that every company and product line exists.

A foreign key is checked row by row (one lookup per row and key at insert): on a month of
the standard benchmark (≈28k + 33k rows) the four checks cost about 0.7 s of a 2.8 s
refresh, for no integrity the contract table does not already give. Deleting a company
that has contracts is still refused (by the contract table's key).

Revision ID: 0004_snapshot_writes
Revises: 0003_rule_deployment_defs
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004_snapshot_writes"
down_revision = "0003_rule_deployment_defs"
branch_labels = None
depends_on = None

FOREIGN_KEYS = (
    (
        "fct_customer_business_monthly_status",
        "fk_snapshot_company",
        "company_id",
        'customer."年金客户" (company_id)',
    ),
    (
        "fct_customer_business_monthly_status",
        "fk_snapshot_product_line",
        "product_line_code",
        'mapping."产品线" ("产品线代码")',
    ),
    (
        "fct_customer_plan_monthly_status",
        "fk_plan_snapshot_company",
        "company_id",
        'customer."年金客户" (company_id)',
    ),
    (
        "fct_customer_plan_monthly_status",
        "fk_plan_snapshot_product_line",
        "product_line_code",
        'mapping."产品线" ("产品线代码")',
    ),
)


def upgrade() -> None:
    for table, name, _, _ in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE customer.{table} DROP CONSTRAINT IF EXISTS {name}")


def downgrade() -> None:
    for table, name, column, target in FOREIGN_KEYS:
        op.execute(
            f"ALTER TABLE customer.{table} ADD CONSTRAINT {name} "
            f"FOREIGN KEY ({column}) REFERENCES {target}"
        )
