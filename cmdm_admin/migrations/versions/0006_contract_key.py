"""Integer contract keys: cheaper version writes for customer.customer_plan_contract.

Each version written by the sync used to cost ~110 µs, most of it in two places (measured
on the standard benchmark, docs/performance.md):

- the no-overlap exclusion constraint, a GiST index over three varchar columns and the
  validity range: every insert and every valid_to move adds a GiST entry whose text keys
  are compared (and, under a linguistic collation, collated) at every level, and searches
  the same index for a conflict;
- two foreign keys, one lookup each per inserted row.

Now every key (company_id, plan_code, product_line_code) is registered once in
customer.contract_key, which carries the two foreign keys, and each version carries its
key_id. The exclusion constraint compares (key_id, range) — the same invariant, since
key_id identifies the key one to one — and one composite foreign key (key_id and the
three key columns) replaces the two, so a version cannot name a key other than its own.

Also: idx_contract_company is dropped (a prefix of idx_contract_company_year), and
idx_contract_company_year gains product_line_code, so that an annual status evaluated
per (company, product line) finds its year's versions with one btree probe.

A version inserted without key_id (by hand, by a test) gets it from a BEFORE INSERT
trigger that registers the key; the sync supplies key_id itself, so the trigger's WHEN
clause skips it there.

Revision ID: 0006_contract_key
Revises: 0005_post_etl_hooks
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0006_contract_key"
down_revision = "0005_post_etl_hooks"
branch_labels = None
depends_on = None

KEY_TABLE = "customer.contract_key"
ASSIGN_FUNCTION = "cmdm.tg_assign_contract_key()"

UPGRADE = """
CREATE TABLE customer.contract_key (
    key_id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id         varchar NOT NULL,
    plan_code          varchar NOT NULL,
    product_line_code  varchar(20) NOT NULL,
    CONSTRAINT uq_contract_key UNIQUE (company_id, plan_code, product_line_code),
    -- the target of the versions' composite foreign key
    CONSTRAINT uq_contract_key_identity UNIQUE (key_id, company_id, plan_code, product_line_code),
    CONSTRAINT fk_contract_company FOREIGN KEY (company_id)
        REFERENCES customer."年金客户" (company_id),
    CONSTRAINT fk_contract_product_line FOREIGN KEY (product_line_code)
        REFERENCES mapping."产品线" ("产品线代码")
);
COMMENT ON TABLE customer.contract_key IS
    'One row per contract key (company_id, plan_code, product_line_code) that has versions in '
    'customer.customer_plan_contract; key_id is internal (it may change when a key loses all '
    'its versions and comes back). Maintained by customer.sync_contract_status().';

INSERT INTO customer.contract_key (company_id, plan_code, product_line_code)
SELECT DISTINCT c.company_id, c.plan_code, c.product_line_code
  FROM customer.customer_plan_contract c
 ORDER BY 1, 2, 3;

ALTER TABLE customer.customer_plan_contract ADD COLUMN key_id integer;
UPDATE customer.customer_plan_contract c
   SET key_id = k.key_id
  FROM customer.contract_key k
 WHERE k.company_id = c.company_id AND k.plan_code = c.plan_code
   AND k.product_line_code = c.product_line_code;
ALTER TABLE customer.customer_plan_contract
    ALTER COLUMN key_id SET NOT NULL,
    DROP CONSTRAINT fk_contract_company,
    DROP CONSTRAINT fk_contract_product_line,
    ADD CONSTRAINT fk_contract_key
        FOREIGN KEY (key_id, company_id, plan_code, product_line_code)
        REFERENCES customer.contract_key (key_id, company_id, plan_code, product_line_code),
    DROP CONSTRAINT ex_contract_no_overlap,
    ADD CONSTRAINT ex_contract_no_overlap
        EXCLUDE USING gist (key_id WITH =, daterange(valid_from, valid_to) WITH &&);
COMMENT ON COLUMN customer.customer_plan_contract.key_id IS
    'customer.contract_key of (company_id, plan_code, product_line_code); internal';

DROP INDEX customer.idx_contract_company;
DROP INDEX customer.idx_contract_company_year;
CREATE INDEX idx_contract_company_year
    ON customer.customer_plan_contract (company_id, status_year, product_line_code);

CREATE FUNCTION cmdm.tg_assign_contract_key()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
/*
 * A version inserted without key_id gets its key's (registered here when new). The sync
 * passes key_id and never fires this. NULL key parts are left to the table's NOT NULL
 * constraints, which name the column.
 */
BEGIN
    IF NEW.company_id IS NULL OR NEW.plan_code IS NULL OR NEW.product_line_code IS NULL THEN
        RETURN NEW;
    END IF;
    INSERT INTO customer.contract_key (company_id, plan_code, product_line_code)
    VALUES (NEW.company_id, NEW.plan_code, NEW.product_line_code)
    ON CONFLICT ON CONSTRAINT uq_contract_key DO NOTHING;
    SELECT k.key_id INTO NEW.key_id
      FROM customer.contract_key k
     WHERE k.company_id = NEW.company_id AND k.plan_code = NEW.plan_code
       AND k.product_line_code = NEW.product_line_code;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION cmdm.tg_assign_contract_key() IS
    'BEFORE INSERT on customer.customer_plan_contract: key_id from customer.contract_key.';
REVOKE ALL ON FUNCTION cmdm.tg_assign_contract_key() FROM PUBLIC;

CREATE TRIGGER _050_assign_contract_key
    BEFORE INSERT ON customer.customer_plan_contract
    FOR EACH ROW WHEN (NEW.key_id IS NULL)
    EXECUTE FUNCTION cmdm.tg_assign_contract_key();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS _050_assign_contract_key ON customer.customer_plan_contract;
DROP FUNCTION IF EXISTS cmdm.tg_assign_contract_key();
DROP INDEX customer.idx_contract_company_year;
CREATE INDEX idx_contract_company_year
    ON customer.customer_plan_contract (company_id, status_year);
CREATE INDEX idx_contract_company ON customer.customer_plan_contract (company_id);
ALTER TABLE customer.customer_plan_contract
    DROP CONSTRAINT ex_contract_no_overlap,
    ADD CONSTRAINT ex_contract_no_overlap EXCLUDE USING gist (
        company_id WITH =, plan_code WITH =, product_line_code WITH =,
        daterange(valid_from, valid_to) WITH &&),
    DROP CONSTRAINT fk_contract_key,
    ADD CONSTRAINT fk_contract_company FOREIGN KEY (company_id)
        REFERENCES customer."年金客户" (company_id),
    ADD CONSTRAINT fk_contract_product_line FOREIGN KEY (product_line_code)
        REFERENCES mapping."产品线" ("产品线代码"),
    DROP COLUMN key_id;
DROP TABLE customer.contract_key;
"""


def _registry(sql: str, object_type: str, identity: str) -> None:
    op.execute(text(sql).bindparams(object_type=object_type, identity=identity))


def upgrade() -> None:
    op.execute(UPGRADE)
    for object_type, identity in (("table", KEY_TABLE), ("function", ASSIGN_FUNCTION)):
        _registry(
            "INSERT INTO cmdm.managed_object (object_type, object_identity, created_by) "
            f"VALUES (:object_type, :identity, '{revision}')",
            object_type,
            identity,
        )


def downgrade() -> None:
    op.execute(DOWNGRADE)
    for object_type, identity in (("function", ASSIGN_FUNCTION), ("table", KEY_TABLE)):
        _registry(
            "DELETE FROM cmdm.managed_object "
            "WHERE object_type = :object_type AND object_identity = :identity",
            object_type,
            identity,
        )
