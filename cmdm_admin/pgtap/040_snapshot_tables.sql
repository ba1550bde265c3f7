-- cmdm-verify: read-only
-- 040: the two monthly snapshot tables, customer.fct_customer_business_monthly_status
-- (per company and product line) and customer.fct_customer_plan_monthly_status (per
-- contract key): columns, types, NOT NULL, defaults, PKs, no FKs, indexes, the month-end
-- check. Read-only (catalog only); their behaviour is 041_snapshot_tables_behaviour.sql.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(63);

-- ======================================================= fct_customer_business_monthly_status
SELECT has_table('customer', 'fct_customer_business_monthly_status',
    'table customer.fct_customer_business_monthly_status exists');
-- the base columns, plus one boolean column per status the deployed rules define
SELECT is_empty(
    $$SELECT a.attname FROM pg_catalog.pg_attribute a
       WHERE a.attrelid = 'customer.fct_customer_business_monthly_status'::regclass AND a.attnum > 0
         AND NOT a.attisdropped
         AND a.attname <> ALL (ARRAY['snapshot_month', 'company_id', 'product_line_code', 'product_line_name',
          'is_strategic', 'is_existing', 'is_new', 'is_winning_this_year',
          'is_churned_this_year', 'aum_balance', 'plan_count', 'updated_at'])
         AND NOT (a.atttypid = 'boolean'::regtype AND a.attnotnull AND a.atthasdef)$$,
    'business snapshot: every column beyond the 12 base ones is a NOT NULL boolean status column with a default');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'snapshot_month', 'date', 'business snapshot: snapshot_month is date');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'company_id', 'character varying', 'business snapshot: company_id is varchar');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'product_line_code', 'character varying(20)', 'business snapshot: product_line_code is varchar(20)');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'product_line_name', 'character varying(50)', 'business snapshot: product_line_name is varchar(50)');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'is_strategic', 'boolean', 'business snapshot: is_strategic is boolean');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'is_existing', 'boolean', 'business snapshot: is_existing is boolean');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'is_new', 'boolean', 'business snapshot: is_new is boolean');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'is_winning_this_year', 'boolean', 'business snapshot: is_winning_this_year is boolean');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'is_churned_this_year', 'boolean', 'business snapshot: is_churned_this_year is boolean');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'aum_balance', 'numeric(20,2)', 'business snapshot: aum_balance is numeric(20,2)');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'plan_count', 'integer', 'business snapshot: plan_count is integer');
SELECT col_type_is('customer', 'fct_customer_business_monthly_status', 'updated_at', 'timestamp with time zone', 'business snapshot: updated_at is timestamptz');
SELECT is_empty(
    $$SELECT attname FROM pg_catalog.pg_attribute
       WHERE attrelid = 'customer.fct_customer_business_monthly_status'::regclass
         AND attnum > 0 AND NOT attisdropped AND NOT attnotnull$$,
    'business snapshot: every column is NOT NULL');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'is_strategic', false, 'business snapshot: is_strategic defaults to false');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'is_existing', false, 'business snapshot: is_existing defaults to false');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'is_new', false, 'business snapshot: is_new defaults to false');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'is_winning_this_year', false, 'business snapshot: is_winning_this_year defaults to false');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'is_churned_this_year', false, 'business snapshot: is_churned_this_year defaults to false');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'aum_balance', 0, 'business snapshot: aum_balance defaults to 0');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'plan_count', 0, 'business snapshot: plan_count defaults to 0');
SELECT col_default_is('customer', 'fct_customer_business_monthly_status', 'updated_at', 'now()', 'business snapshot: updated_at defaults to now()');
SELECT col_hasnt_default('customer', 'fct_customer_business_monthly_status', 'snapshot_month', 'business snapshot: snapshot_month has no default');
SELECT col_hasnt_default('customer', 'fct_customer_business_monthly_status', 'product_line_name', 'business snapshot: product_line_name has no default');
SELECT has_pk('customer', 'fct_customer_business_monthly_status', 'business snapshot has a primary key');
SELECT col_is_pk('customer', 'fct_customer_business_monthly_status',
    ARRAY['snapshot_month', 'company_id', 'product_line_code'],
    'business snapshot PK is (snapshot_month, company_id, product_line_code)');
SELECT hasnt_fk('customer', 'fct_customer_business_monthly_status',
    'business snapshot: no foreign keys (derived rows, written only by refresh_monthly_snapshot from FK-checked contract versions; docs/snapshots.md)');
-- Named constraints other than the NOT NULLs (PostgreSQL 18 records each as a constraint
-- of kind 'n', 15 does not; "every column is NOT NULL" above tests them).
SELECT set_eq(
    $$SELECT conname::text, contype::text FROM pg_catalog.pg_constraint
       WHERE conrelid = 'customer.fct_customer_business_monthly_status'::regclass
         AND contype <> 'n'$$,
    $$VALUES ('fct_customer_business_monthly_status_pkey', 'p'),
             ('ck_snapshot_month_end', 'c')$$,
    'business snapshot has exactly its two named constraints');
SELECT indexes_are('customer', 'fct_customer_business_monthly_status',
    ARRAY['fct_customer_business_monthly_status_pkey', 'idx_snapshot_company'],
    'business snapshot has exactly the PK and the index on company_id (docs/schema.md "Indexes")');
SELECT has_index('customer', 'fct_customer_business_monthly_status', 'idx_snapshot_company', ARRAY['company_id'],
    'idx_snapshot_company is on (company_id)');
SELECT is_empty(
    $$SELECT ci.relname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ci ON ci.oid = x.indexrelid
       WHERE x.indrelid = 'customer.fct_customer_business_monthly_status'::regclass
         AND x.indpred IS NOT NULL$$,
    'no partial index on the business snapshot');

-- ======================================================= fct_customer_plan_monthly_status
SELECT has_table('customer', 'fct_customer_plan_monthly_status',
    'table customer.fct_customer_plan_monthly_status exists');
-- the base columns, plus one boolean column per status the deployed rules define
SELECT is_empty(
    $$SELECT a.attname FROM pg_catalog.pg_attribute a
       WHERE a.attrelid = 'customer.fct_customer_plan_monthly_status'::regclass AND a.attnum > 0
         AND NOT a.attisdropped
         AND a.attname <> ALL (ARRAY['snapshot_month', 'company_id', 'plan_code', 'product_line_code', 'product_line_name',
          'is_strategic', 'is_existing', 'is_new', 'is_winning_this_year',
          'is_churned_this_year', 'aum_balance', 'updated_at'])
         AND NOT (a.atttypid = 'boolean'::regtype AND a.attnotnull AND a.atthasdef)$$,
    'plan snapshot: every column beyond the 12 base ones is a NOT NULL boolean status column with a default');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'snapshot_month', 'date', 'plan snapshot: snapshot_month is date');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'company_id', 'character varying', 'plan snapshot: company_id is varchar');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'plan_code', 'character varying', 'plan snapshot: plan_code is varchar');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'product_line_code', 'character varying(20)', 'plan snapshot: product_line_code is varchar(20)');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'product_line_name', 'character varying(50)', 'plan snapshot: product_line_name is varchar(50)');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'is_strategic', 'boolean', 'plan snapshot: is_strategic is boolean');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'is_existing', 'boolean', 'plan snapshot: is_existing is boolean');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'is_new', 'boolean', 'plan snapshot: is_new is boolean');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'is_winning_this_year', 'boolean', 'plan snapshot: is_winning_this_year is boolean');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'is_churned_this_year', 'boolean', 'plan snapshot: is_churned_this_year is boolean');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'aum_balance', 'numeric(20,2)', 'plan snapshot: aum_balance is numeric(20,2)');
SELECT col_type_is('customer', 'fct_customer_plan_monthly_status', 'updated_at', 'timestamp with time zone', 'plan snapshot: updated_at is timestamptz');
SELECT is_empty(
    $$SELECT attname FROM pg_catalog.pg_attribute
       WHERE attrelid = 'customer.fct_customer_plan_monthly_status'::regclass
         AND attnum > 0 AND NOT attisdropped AND NOT attnotnull$$,
    'plan snapshot: every column is NOT NULL');
SELECT col_default_is('customer', 'fct_customer_plan_monthly_status', 'is_strategic', false, 'plan snapshot: is_strategic defaults to false');
SELECT col_default_is('customer', 'fct_customer_plan_monthly_status', 'is_existing', false, 'plan snapshot: is_existing defaults to false');
SELECT col_default_is('customer', 'fct_customer_plan_monthly_status', 'is_new', false, 'plan snapshot: is_new defaults to false');
SELECT col_default_is('customer', 'fct_customer_plan_monthly_status', 'is_winning_this_year', false, 'plan snapshot: is_winning_this_year defaults to false');
SELECT col_default_is('customer', 'fct_customer_plan_monthly_status', 'is_churned_this_year', false, 'plan snapshot: is_churned_this_year defaults to false');
SELECT col_default_is('customer', 'fct_customer_plan_monthly_status', 'aum_balance', 0, 'plan snapshot: aum_balance defaults to 0');
SELECT col_default_is('customer', 'fct_customer_plan_monthly_status', 'updated_at', 'now()', 'plan snapshot: updated_at defaults to now()');
SELECT col_hasnt_default('customer', 'fct_customer_plan_monthly_status', 'snapshot_month', 'plan snapshot: snapshot_month has no default');
SELECT col_hasnt_default('customer', 'fct_customer_plan_monthly_status', 'plan_code', 'plan snapshot: plan_code has no default');
SELECT has_pk('customer', 'fct_customer_plan_monthly_status', 'plan snapshot has a primary key');
SELECT col_is_pk('customer', 'fct_customer_plan_monthly_status',
    ARRAY['snapshot_month', 'company_id', 'plan_code', 'product_line_code'],
    'plan snapshot PK is (snapshot_month, company_id, plan_code, product_line_code)');
SELECT hasnt_fk('customer', 'fct_customer_plan_monthly_status',
    'plan snapshot: no foreign keys (derived rows, written only by refresh_monthly_snapshot from FK-checked contract versions; docs/snapshots.md)');
-- Named constraints other than the NOT NULLs (PostgreSQL 18 records each as a constraint
-- of kind 'n', 15 does not; "every column is NOT NULL" above tests them).
SELECT set_eq(
    $$SELECT conname::text, contype::text FROM pg_catalog.pg_constraint
       WHERE conrelid = 'customer.fct_customer_plan_monthly_status'::regclass
         AND contype <> 'n'$$,
    $$VALUES ('fct_customer_plan_monthly_status_pkey', 'p'),
             ('ck_plan_snapshot_month_end', 'c')$$,
    'plan snapshot has exactly its two named constraints');
SELECT indexes_are('customer', 'fct_customer_plan_monthly_status',
    ARRAY['fct_customer_plan_monthly_status_pkey', 'idx_plan_snapshot_company'],
    'plan snapshot has exactly the PK and the index on company_id (docs/schema.md "Indexes")');
SELECT has_index('customer', 'fct_customer_plan_monthly_status', 'idx_plan_snapshot_company', ARRAY['company_id'],
    'idx_plan_snapshot_company is on (company_id)');
SELECT is_empty(
    $$SELECT ci.relname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ci ON ci.oid = x.indexrelid
       WHERE x.indrelid = 'customer.fct_customer_plan_monthly_status'::regclass
         AND x.indpred IS NOT NULL$$,
    'no partial index on the plan snapshot');

SELECT * FROM finish();
ROLLBACK;
