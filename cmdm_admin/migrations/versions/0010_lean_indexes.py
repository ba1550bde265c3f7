"""Lean indexes: every index on the output tables is kept only with a query that uses it.

Every index costs every row written: the sync's inserts and valid_to moves (an indexed
column, so never a HOT update: each move adds an entry to every index of the contract
table), and each month's snapshot rows. Sixteen indexes had no query of cmdm and none of
the BI queries docs/schema.md promises to serve, or did the job of another index:

customer.customer_plan_contract
- idx_contract_plan (plan_code), idx_contract_product_line (product_line_code),
  idx_contract_strategic (is_strategic, partial): no query filters on them alone (a
  product-line rename rewrites a share of all history: a sequential scan is its plan);
- idx_active_contracts (unique, partial on current versions): uq_active_contract (key,
  valid_to) holds the same invariant (two current versions of a key share valid_to
  9999-12-31), as does ex_contract_no_overlap, and serves "current versions of a company"
  and every per-key lookup as well;
- idx_contract_valid_from_brin (valid_from): no query reads a valid_from range;
- idx_contract_company_year (company_id, status_year, product_line_code): the annual flags
  are read from customer.annual_*_status since 0008; the per-company lookups that remain
  use uq_active_contract, whose first column is company_id.

customer.fct_customer_business_monthly_status, customer.fct_customer_plan_monthly_status
- idx_snapshot_month, idx_plan_snapshot_month (snapshot_month): a prefix of the primary key;
- idx_snapshot_month_brin, idx_plan_snapshot_month_brin: the primary key finds a month;
- idx_snapshot_month_product, idx_plan_snapshot_month_product (snapshot_month,
  product_line_code): the primary key serves a month of one product line as well (both
  columns are index conditions of its range scan over the month);
- idx_snapshot_product_line (product_line_code), idx_plan_snapshot_plan (plan_code): every
  month of a product line is a share of the table, and a plan is queried with its company
  (idx_plan_snapshot_company);
- idx_snapshot_strategic, idx_plan_snapshot_strategic (snapshot_month WHERE is_strategic):
  a month's strategic rows are read from the month's primary-key range with a filter
  (`cmdm summary`'s top customers: 2.5 ms instead of 1.7 ms on the benchmark).

What stays, and the query each one serves: docs/schema.md, "Indexes", pinned by
tests/py/test_indexes.py. Write cost per row, measured there on copies of the tables with
each index set (median of 7 runs): a contract version insert from 39.9 to 30.8 µs, a
valid_to move from 41.7 to 28.2 µs, a business / plan snapshot row from 9.5 / 8.5 to
4.5 / 4.1 µs.

downgrade recreates the sixteen exactly as they were.

Revision ID: 0010_lean_indexes
Revises: 0009_rules_63806df56957
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0010_lean_indexes"
down_revision = "0008_annual_status"
branch_labels = None
depends_on = None

#: (name, definition) of each index dropped, as created by 0001_base_schema and
#: 0006_contract_key; downgrade recreates them in this order.
DROPPED = (
    ("idx_contract_plan", "ON customer.customer_plan_contract (plan_code)"),
    ("idx_contract_product_line", "ON customer.customer_plan_contract (product_line_code)"),
    (
        "idx_contract_strategic",
        "ON customer.customer_plan_contract (is_strategic) WHERE is_strategic",
    ),
    (
        "idx_active_contracts",
        "ON customer.customer_plan_contract (company_id, plan_code, product_line_code)"
        " WHERE valid_to = '9999-12-31'",
    ),
    (
        "idx_contract_valid_from_brin",
        "ON customer.customer_plan_contract USING brin (valid_from)",
    ),
    (
        "idx_contract_company_year",
        "ON customer.customer_plan_contract (company_id, status_year, product_line_code)",
    ),
    ("idx_snapshot_month", "ON customer.fct_customer_business_monthly_status (snapshot_month)"),
    (
        "idx_snapshot_product_line",
        "ON customer.fct_customer_business_monthly_status (product_line_code)",
    ),
    (
        "idx_snapshot_month_product",
        "ON customer.fct_customer_business_monthly_status (snapshot_month, product_line_code)",
    ),
    (
        "idx_snapshot_month_brin",
        "ON customer.fct_customer_business_monthly_status USING brin (snapshot_month)",
    ),
    (
        "idx_snapshot_strategic",
        "ON customer.fct_customer_business_monthly_status (snapshot_month) WHERE is_strategic",
    ),
    ("idx_plan_snapshot_month", "ON customer.fct_customer_plan_monthly_status (snapshot_month)"),
    ("idx_plan_snapshot_plan", "ON customer.fct_customer_plan_monthly_status (plan_code)"),
    (
        "idx_plan_snapshot_month_product",
        "ON customer.fct_customer_plan_monthly_status (snapshot_month, product_line_code)",
    ),
    (
        "idx_plan_snapshot_month_brin",
        "ON customer.fct_customer_plan_monthly_status USING brin (snapshot_month)",
    ),
    (
        "idx_plan_snapshot_strategic",
        "ON customer.fct_customer_plan_monthly_status (snapshot_month) WHERE is_strategic",
    ),
)

#: The one unique index among them.
UNIQUE = frozenset({"idx_active_contracts"})


def upgrade() -> None:
    # None of them backs a constraint: a plain DROP INDEX each (one statement, one lock
    # per table).
    op.execute("DROP INDEX " + ", ".join(f"customer.{name}" for name, _ in DROPPED))


def downgrade() -> None:
    for name, definition in DROPPED:
        unique = "UNIQUE " if name in UNIQUE else ""
        op.execute(f"CREATE {unique}INDEX {name} {definition}")
