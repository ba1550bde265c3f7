-- cmdm-verify: read-only
-- 010: the four schemas of 0001_base_schema (mapping, business, customer, cmdm) and the
-- btree_gist extension, which the EXCLUDE constraint on customer.customer_plan_contract
-- needs for its varchar "WITH =" parts.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(8);

-- structure
SELECT has_schema('mapping', 'schema mapping exists');
SELECT has_schema('business', 'schema business exists');
SELECT has_schema('customer', 'schema customer exists');
SELECT has_schema('cmdm', 'schema cmdm exists');
SELECT has_extension('btree_gist', 'extension btree_gist is installed');
SELECT has_opclass('gist_text_ops', 'btree_gist provides gist_text_ops (varchar/text WITH =)');

-- behaviour: btree_gist makes "scalar WITH =" usable next to a range in a gist EXCLUDE
SELECT lives_ok(
    $$CREATE TEMP TABLE pgtap_btree_gist_probe (
          k varchar NOT NULL,
          r daterange NOT NULL,
          EXCLUDE USING gist (k WITH =, r WITH &&)) ON COMMIT DROP$$,
    'a gist EXCLUDE constraint with a varchar WITH = part can be created');
SELECT throws_ok(
    $$INSERT INTO pgtap_btree_gist_probe VALUES
          ('a', daterange('2025-01-31', '2025-03-31')),
          ('a', daterange('2025-02-28', '9999-12-31'))$$,
    '23P01', NULL,
    'the btree_gist-backed exclusion rejects overlapping ranges for the same key');

SELECT * FROM finish();
ROLLBACK;
