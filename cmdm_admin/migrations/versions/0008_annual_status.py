"""Annual statuses as data (DESIGN §4): the reference month of each year, and what it
decided per key of each grain, in tables of their own.

Before, the sync computed a year's annual statuses as a side effect, kept them only on the
contract versions, and read them back from a version of the same key in that year. That
reading went wrong twice (a reference month counted twice in the first year of history; a
rebuild under changed rules that never re-decided a year whose reference month lay outside
its range) and could not be checked. Now:

- customer.annual_reference: one row per year that has a loaded month: its reference month
  (the last loaded month before January 1, else the first loaded month of the year).
- customer.annual_company_status, customer.annual_product_line_status,
  customer.annual_plan_status: one row per key of the grain with valid facts at the
  reference month, with the evidence the decision read (the rules' aggregates, the rank
  of each top_n) and one boolean column per annual status of that grain (added by rules
  deploys, like the snapshot tables' status columns). A key without a row had no facts at
  the reference month: its statuses are the rule's value over no facts.

customer.decide_annual_statuses (rules-rendered) writes them in one set-based statement
per grain; versions take their annual flags from them. No foreign key from the key rows to
their year: only that function writes them, a year at a time, and a check per row cost a
fifth of writing a year's decision (measured: 119 ms for the product-line rows of 5,000
companies, with it). Existing data: the first sync (or
`cmdm rebuild`) of a year decides it.

Revision ID: 0008_annual_status
Revises: 0007_rules_35d0d39506b2
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0008_annual_status"
down_revision = "0006_contract_key"
branch_labels = None
depends_on = None

TABLES = (
    "customer.annual_reference",
    "customer.annual_company_status",
    "customer.annual_product_line_status",
    "customer.annual_plan_status",
)

UPGRADE = """
CREATE TABLE customer.annual_reference (
    status_year      integer PRIMARY KEY,
    reference_month  date NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_annual_reference_month_end CHECK (
        reference_month
        = (date_trunc('month', reference_month) + INTERVAL '1 month - 1 day')::date),
    -- the last loaded month before the year, else one of the year's own months
    CONSTRAINT ck_annual_reference_in_reach CHECK (
        reference_month < make_date(status_year + 1, 1, 1))
);
COMMENT ON TABLE customer.annual_reference IS
    'Per year with a loaded month: the reference month that decides its annual statuses '
    '(DESIGN §4). Written by customer.decide_annual_statuses().';

CREATE TABLE customer.annual_company_status (
    status_year  integer NOT NULL,
    company_id   varchar NOT NULL,
    evidence     jsonb NOT NULL,
    PRIMARY KEY (status_year, company_id)
);
CREATE TABLE customer.annual_product_line_status (
    status_year        integer NOT NULL,
    company_id         varchar NOT NULL,
    product_line_code  varchar(20) NOT NULL,
    evidence           jsonb NOT NULL,
    PRIMARY KEY (status_year, company_id, product_line_code)
);
CREATE TABLE customer.annual_plan_status (
    status_year        integer NOT NULL,
    company_id         varchar NOT NULL,
    plan_code          varchar NOT NULL,
    product_line_code  varchar(20) NOT NULL,
    evidence           jsonb NOT NULL,
    PRIMARY KEY (status_year, company_id, plan_code, product_line_code)
);
COMMENT ON TABLE customer.annual_company_status IS
    'Annual statuses of grain company, per year and company with valid facts at the year''s '
    'reference month; evidence: the aggregates and top_n ranks the decision read.';
COMMENT ON TABLE customer.annual_product_line_status IS
    'Annual statuses of grain product_line, per year, company and product line with valid '
    'facts at the year''s reference month; evidence: what the decision read.';
COMMENT ON TABLE customer.annual_plan_status IS
    'Annual statuses of grain plan, per year and contract key with valid facts at the year''s '
    'reference month; evidence: what the decision read.';
"""

DOWNGRADE = """
DROP TABLE customer.annual_plan_status;
DROP TABLE customer.annual_product_line_status;
DROP TABLE customer.annual_company_status;
DROP TABLE customer.annual_reference;
"""


def _registry(sql: str, identity: str) -> None:
    op.execute(text(sql).bindparams(identity=identity))


def upgrade() -> None:
    op.execute(UPGRADE)
    for identity in TABLES:
        _registry(
            "INSERT INTO cmdm.managed_object (object_type, object_identity, created_by) "
            f"VALUES ('table', :identity, '{revision}')",
            identity,
        )


def downgrade() -> None:
    op.execute(DOWNGRADE)
    for identity in reversed(TABLES):
        _registry(
            "DELETE FROM cmdm.managed_object "
            "WHERE object_type = 'table' AND object_identity = :identity",
            identity,
        )
