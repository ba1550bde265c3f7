"""Issue 18: a hook lock only cmdm can take, stale months on record, two new reject reasons.

- cmdm.hook_lock: the rows the post-ETL hooks, `cmdm rebuild` and the product-line rename
  serialize on, as row locks taken by cmdm.take_hook_lock (rules-rendered): the row
  'contract_sync' FOR UPDATE by every writer of the contract history (FOR SHARE by a
  snapshot refresh called alone), and a row 'snapshot:YYYY-MM' per month (made on first
  use) FOR UPDATE by a refresh of that month. Before, they were advisory locks, which any
  role may take: a `cmdm_reader` login holding `pg_advisory_lock(hashtext(
  'cmdm:contract_sync'))` stalled every load until it disconnected. Locking a row takes
  UPDATE on its table (even FOR KEY SHARE), and locking the table more than SELECT; only
  cmdm_owner, which runs the hooks, has either.
- cmdm.stale_change: which months' facts (and which events dates) changed while the hooks
  did not run — a load with `cmdm.post_hooks = off`, or while its domain was disabled —
  one row per (domain, kind, period) and writing transaction, written by the input
  tables' statement triggers; a successful hook run of the month deletes them in its own
  transaction. `cmdm status` lists them, `cmdm backfill --stale` repairs exactly those.
  Rows are only inserted by the writer's own transaction (its txid is in the key), so
  recording never waits for another load.
- cmdm.rejected_fact.reason: also 'blank_key' (a key part that is empty or only blanks)
  and 'amount_overflow' (a (company, product line) whose plan or total AUM of the month
  does not fit the snapshot tables' numeric(20, 2): its rows are left out of that month's
  snapshots instead of failing the whole COMMIT).
- customer.contract_key: no blank key part (ck_contract_key_not_blank), which the sync
  relies on: a key with a version is a valid one. Versions and plan snapshot rows of
  blank keys (earlier releases accepted them) are removed first, and every month they
  covered is recorded stale (reason 'upgrade'): `cmdm backfill --stale` then records their
  facts as rejects and recomputes the business rows and annual statuses they counted in.
  (Usually none.)

downgrade drops the two tables and the constraint and restores the reason check; the
rejects with the new reasons are derived data and are deleted with it (the next sync of
their months writes what the earlier release makes of those rows). Removed blank-key
versions do not come back: the earlier release's next sync of their months recreates them.

Revision ID: 0011_hook_locks
Revises: 0010_lean_indexes
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0011_hook_locks"
down_revision = "0010_lean_indexes"
branch_labels = None
depends_on = None

TABLES = ("cmdm.hook_lock", "cmdm.stale_change")

#: The blanks btrim removes before a key part counts as empty (as the rendered rules do).
BLANKS = r"E' \t\r\n'"


def _blank(alias: str) -> str:
    """A key part of `alias` is empty or only blanks."""
    return " OR ".join(
        f"pg_catalog.btrim({alias}.{column}, {BLANKS}) = ''"
        for column in ("company_id", "plan_code", "product_line_code")
    )


UPGRADE = f"""
CREATE TABLE cmdm.hook_lock (
    name  text PRIMARY KEY
        CONSTRAINT ck_hook_lock_name
        CHECK (name = 'contract_sync' OR name ~ '^snapshot:[0-9]{{4}}-[0-9]{{2}}$')
);
COMMENT ON TABLE cmdm.hook_lock IS
    'Rows the post-ETL hooks, cmdm rebuild and the product-line rename lock to serialize '
    '(cmdm.take_hook_lock): contract_sync, and one per snapshot month. Only roles with '
    'UPDATE here (cmdm_owner) can lock them.';
INSERT INTO cmdm.hook_lock (name) VALUES ('contract_sync');

CREATE TABLE cmdm.stale_change (
    domain      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('facts', 'event')),
    period      date NOT NULL,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    reason      text NOT NULL CHECK (reason IN ('hooks_off', 'domain_disabled', 'upgrade')),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text NOT NULL DEFAULT session_user,
    PRIMARY KEY (domain, kind, period, txid)
);
COMMENT ON TABLE cmdm.stale_change IS
    'Months (kind facts: first day) and events dates (kind event) changed since their last '
    'successful post-ETL hook run, per writing transaction; deleted by that run. '
    'cmdm status lists them, cmdm backfill --stale repairs them.';

ALTER TABLE cmdm.rejected_fact
    DROP CONSTRAINT rejected_fact_reason_check,
    ADD CONSTRAINT rejected_fact_reason_check CHECK (reason IN (
        'null_key', 'blank_key', 'unknown_product_line', 'unknown_company', 'amount_overflow'));

DO $blank$
BEGIN
    IF EXISTS (SELECT FROM customer.contract_key k WHERE {_blank("k")}) THEN
        INSERT INTO cmdm.stale_change (domain, kind, period, reason)
        SELECT DISTINCT 'annuity_performance', 'facts', m.m, 'upgrade'
          FROM (SELECT date_trunc('month', s.snapshot_month)::date
                  FROM customer.fct_customer_plan_monthly_status s
                  JOIN customer.contract_key k USING (company_id, plan_code, product_line_code)
                 WHERE {_blank("k")}
                UNION
                SELECT date_trunc('month', c.valid_from)::date
                  FROM customer.customer_plan_contract c
                  JOIN customer.contract_key k USING (key_id)
                 WHERE {_blank("k")}) m(m)
         WHERE EXISTS (SELECT FROM cmdm.hook_domain d WHERE d.domain = 'annuity_performance');
        DELETE FROM customer.fct_customer_plan_monthly_status s
         USING customer.contract_key k
         WHERE k.company_id = s.company_id AND k.plan_code = s.plan_code
           AND k.product_line_code = s.product_line_code AND ({_blank("k")});
        DELETE FROM customer.customer_plan_contract c
         USING customer.contract_key k
         WHERE k.key_id = c.key_id AND ({_blank("k")});
        DELETE FROM customer.contract_key k WHERE {_blank("k")};
    END IF;
END
$blank$;
ALTER TABLE customer.contract_key
    ADD CONSTRAINT ck_contract_key_not_blank CHECK (NOT ({_blank("contract_key")}));
"""

DOWNGRADE = """
ALTER TABLE customer.contract_key DROP CONSTRAINT ck_contract_key_not_blank;
DELETE FROM cmdm.rejected_fact WHERE reason IN ('blank_key', 'amount_overflow');
ALTER TABLE cmdm.rejected_fact
    DROP CONSTRAINT rejected_fact_reason_check,
    ADD CONSTRAINT rejected_fact_reason_check CHECK (reason IN (
        'null_key', 'unknown_product_line', 'unknown_company'));
DROP TABLE cmdm.stale_change;
DROP TABLE cmdm.hook_lock;
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
