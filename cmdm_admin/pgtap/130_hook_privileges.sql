-- 130_hook_privileges: who may run what of the post-ETL hooks (DESIGN §8, docs/security.md).
-- cmdm_etl loads the inputs and its loads' commits run the hooks (the trigger functions
-- and cmdm.run_hooks are SECURITY DEFINER, owned by cmdm_owner); its one routine of ours
-- is CALL customer.run_post_etl_hooks. It cannot write the outputs or cmdm's tables, nor
-- execute any other routine. cmdm_reader reads the outputs only; PUBLIC executes nothing.
-- Checked in the catalog, then by acting as each role (SET LOCAL ROLE ... / RESET ROLE).
-- Tables and schemas of the base schema are 070's; this file is about routines, the
-- hooks' tables (hook_queue, backfill_run) and a load's commit under the ETL's privileges.
--
-- A pgTAP file runs in one transaction that is rolled back: `SET CONSTRAINTS ALL
-- IMMEDIATE` fires the deferred commit-time hook exactly as COMMIT would (see 120_hooks).
--
-- Production-safe (cmdm verify runs this in a rolled-back transaction on real databases):
-- only year 2191, only TAP-* companies, plans, portfolios, branches and product lines;
-- assertions on hook runs only for those months.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(135);

-- ======================================================= every routine of ours is listed here
-- A new routine fails this test until its privileges are asserted below.
SELECT set_eq(
    $$SELECT object_identity FROM cmdm.managed_object WHERE object_type IN ('function', 'procedure')$$,
    $$VALUES ('cmdm.tg_set_updated_at()'),
             ('cmdm.post_hooks_enabled()'),
             ('cmdm.run_hooks(text, date[], date[], text, daterange, bigint)'),
             ('cmdm.set_hook_domain(text, boolean)'),
             ('customer.contract_dependent_months(date)'),
             ('customer.event_dependent_months(date)'),
             ('customer.loaded_months(date, date)'),
             ('customer.refresh_monthly_snapshot(date)'),
             ('customer.run_post_etl_hooks(text, date)'),
             ('customer.sync_contract_status(date)'),
             ('customer.sync_scope_keys(date, boolean, date)'),
             ('customer.sync_compute_states(date)'),
             ('customer.sync_merge_versions(date, boolean, date)'),
             ('customer.sync_write_versions()'),
             ('customer.sync_snapshot_months(date, date, date, integer[])'),
             ('cmdm.scratch_table(text, text)'),
             ('customer.compute_annual_statuses(integer[])'),
             ('customer.decide_annual_statuses(integer[])'),
             ('customer.compute_monthly_snapshot(date)'),
             ('customer.check_annual_statuses(integer[])'),
             ('customer.check_contract_history(date, date)'),
             ('customer.check_monthly_snapshot(date)'),
             ('cmdm.tg_facts__queue_hooks()'),
             ('cmdm.tg_hook_queue__run_at_commit()'),
             ('cmdm.tg_events__queue_hooks()'),
             ('cmdm.tg_inputs__queue_truncate()'),
             ('cmdm.tg_product_line__propagate_name()'),
             ('cmdm.tg_assign_contract_key()')$$,
    'the routines cmdm registered are exactly those whose privileges this file asserts');

-- ======================================================= how every routine runs
-- SECURITY DEFINER as cmdm_owner with a search_path the caller cannot extend (pg_temp
-- last, so it is never searched for functions or operators). tg_set_updated_at only sets
-- NEW.updated_at: it runs as the caller, with the same pinned search_path.
SELECT is_empty(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.to_regprocedure(m.object_identity) IS NULL$$,
    'every registered routine exists');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.oid IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                        WHERE m.object_type IN ('function', 'procedure'))
         AND p.proowner <> 'cmdm_owner'::regrole$$,
    'every registered routine is owned by cmdm_owner');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.oid IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                        WHERE m.object_type IN ('function', 'procedure'))
         AND p.oid <> 'cmdm.tg_set_updated_at()'::regprocedure
         AND NOT p.prosecdef$$,
    'every registered routine but tg_set_updated_at is SECURITY DEFINER');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.oid IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                        WHERE m.object_type IN ('function', 'procedure'))
         AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
    'every registered routine pins search_path = pg_catalog, pg_temp');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.pronamespace = 'cmdm'::regnamespace
         AND p.oid NOT IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                            WHERE m.object_type IN ('function', 'procedure'))$$,
    'schema cmdm holds no routine cmdm did not register');

-- ======================================================= EXECUTE: sweeps over every routine of ours
SELECT set_eq(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.has_function_privilege('cmdm_etl', pg_catalog.to_regprocedure(m.object_identity), 'EXECUTE')$$,
    $$VALUES ('customer.run_post_etl_hooks(text, date)')$$,
    'cmdm_etl executes one routine of ours: the procedure customer.run_post_etl_hooks');
SELECT is_empty(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.has_function_privilege('cmdm_reader', pg_catalog.to_regprocedure(m.object_identity), 'EXECUTE')$$,
    'cmdm_reader executes no routine of ours');
SELECT is_empty(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.has_function_privilege('public', pg_catalog.to_regprocedure(m.object_identity), 'EXECUTE')$$,
    'PUBLIC executes no routine of ours');
SELECT results_eq(
    $$SELECT p.prokind::text, p.proacl::text[] FROM pg_catalog.pg_proc p
       WHERE p.oid = 'customer.run_post_etl_hooks(text, date)'::regprocedure$$,
    $$VALUES ('p', ARRAY['cmdm_owner=X/cmdm_owner', 'cmdm_etl=X/cmdm_owner'])$$,
    'customer.run_post_etl_hooks is a procedure executable by its owner and cmdm_etl, nobody else');

-- ======================================================= EXECUTE: each routine, each role
-- (function_privs_are reads has_function_privilege, which takes procedures too.)
SELECT function_privs_are('customer', 'run_post_etl_hooks', ARRAY['text', 'date'], 'cmdm_etl', ARRAY['EXECUTE'],
    'cmdm_etl can CALL customer.run_post_etl_hooks(text, date)');
SELECT function_privs_are('customer', 'run_post_etl_hooks', ARRAY['text', 'date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot CALL customer.run_post_etl_hooks(text, date)');
SELECT function_privs_are('customer', 'run_post_etl_hooks', ARRAY['text', 'date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot CALL customer.run_post_etl_hooks(text, date)');

SELECT function_privs_are('cmdm', 'run_hooks', ARRAY['text', 'date[]', 'date[]', 'text', 'daterange', 'bigint'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.run_hooks');
SELECT function_privs_are('cmdm', 'run_hooks', ARRAY['text', 'date[]', 'date[]', 'text', 'daterange', 'bigint'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.run_hooks');
SELECT function_privs_are('cmdm', 'run_hooks', ARRAY['text', 'date[]', 'date[]', 'text', 'daterange', 'bigint'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.run_hooks');

SELECT function_privs_are('cmdm', 'set_hook_domain', ARRAY['text', 'boolean'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.set_hook_domain');
SELECT function_privs_are('cmdm', 'set_hook_domain', ARRAY['text', 'boolean'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.set_hook_domain');
SELECT function_privs_are('cmdm', 'set_hook_domain', ARRAY['text', 'boolean'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.set_hook_domain');

SELECT function_privs_are('cmdm', 'post_hooks_enabled', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.post_hooks_enabled');
SELECT function_privs_are('cmdm', 'post_hooks_enabled', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.post_hooks_enabled');
SELECT function_privs_are('cmdm', 'post_hooks_enabled', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.post_hooks_enabled');

SELECT function_privs_are('customer', 'sync_contract_status', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.sync_contract_status');
SELECT function_privs_are('customer', 'sync_contract_status', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.sync_contract_status');
SELECT function_privs_are('customer', 'sync_contract_status', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.sync_contract_status');

SELECT function_privs_are('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.refresh_monthly_snapshot');
SELECT function_privs_are('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.refresh_monthly_snapshot');
SELECT function_privs_are('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.refresh_monthly_snapshot');

SELECT function_privs_are('customer', 'contract_dependent_months', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.contract_dependent_months');
SELECT function_privs_are('customer', 'contract_dependent_months', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.contract_dependent_months');
SELECT function_privs_are('customer', 'contract_dependent_months', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.contract_dependent_months');

SELECT function_privs_are('customer', 'event_dependent_months', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.event_dependent_months');
SELECT function_privs_are('customer', 'event_dependent_months', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.event_dependent_months');
SELECT function_privs_are('customer', 'event_dependent_months', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.event_dependent_months');

SELECT function_privs_are('customer', 'loaded_months', ARRAY['date', 'date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.loaded_months');
SELECT function_privs_are('customer', 'loaded_months', ARRAY['date', 'date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.loaded_months');
SELECT function_privs_are('customer', 'loaded_months', ARRAY['date', 'date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.loaded_months');

SELECT function_privs_are('cmdm', 'tg_facts__queue_hooks', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_facts__queue_hooks (its trigger runs it as cmdm_owner)');
SELECT function_privs_are('cmdm', 'tg_facts__queue_hooks', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_facts__queue_hooks');
SELECT function_privs_are('cmdm', 'tg_facts__queue_hooks', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_facts__queue_hooks');

SELECT function_privs_are('cmdm', 'tg_events__queue_hooks', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_events__queue_hooks');
SELECT function_privs_are('cmdm', 'tg_events__queue_hooks', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_events__queue_hooks');
SELECT function_privs_are('cmdm', 'tg_events__queue_hooks', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_events__queue_hooks');

SELECT function_privs_are('cmdm', 'tg_hook_queue__run_at_commit', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_hook_queue__run_at_commit');
SELECT function_privs_are('cmdm', 'tg_hook_queue__run_at_commit', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_hook_queue__run_at_commit');
SELECT function_privs_are('cmdm', 'tg_hook_queue__run_at_commit', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_hook_queue__run_at_commit');

SELECT function_privs_are('cmdm', 'tg_inputs__queue_truncate', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_inputs__queue_truncate');
SELECT function_privs_are('cmdm', 'tg_inputs__queue_truncate', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_inputs__queue_truncate');
SELECT function_privs_are('cmdm', 'tg_inputs__queue_truncate', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_inputs__queue_truncate');

SELECT function_privs_are('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_product_line__propagate_name');
SELECT function_privs_are('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_product_line__propagate_name');
SELECT function_privs_are('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_product_line__propagate_name');

SELECT function_privs_are('cmdm', 'tg_assign_contract_key', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_assign_contract_key');
SELECT function_privs_are('cmdm', 'tg_assign_contract_key', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_assign_contract_key');
SELECT function_privs_are('cmdm', 'tg_assign_contract_key', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_assign_contract_key');

-- ======================================================= the hooks' tables
SELECT table_privs_are('cmdm', 'hook_queue', 'cmdm_etl', ARRAY[]::name[], 'cmdm_etl: nothing on cmdm.hook_queue');
SELECT table_privs_are('cmdm', 'hook_queue', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.hook_queue');
SELECT table_privs_are('cmdm', 'hook_queue', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.hook_queue');
SELECT table_privs_are('cmdm', 'backfill_run', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on cmdm.backfill_run');
SELECT table_privs_are('cmdm', 'backfill_run', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.backfill_run');
SELECT table_privs_are('cmdm', 'backfill_run', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.backfill_run');
SELECT table_owner_is('cmdm', 'hook_queue', 'cmdm_owner', 'cmdm.hook_queue is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'backfill_run', 'cmdm_owner', 'cmdm.backfill_run is owned by cmdm_owner');
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'cmdm'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
         AND (pg_catalog.has_table_privilege('cmdm_etl', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
              OR pg_catalog.has_table_privilege('cmdm_reader', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))$$,
    'no table of schema cmdm is writable by cmdm_etl or reachable by cmdm_reader');
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.oid IN ('customer.customer_plan_contract'::regclass,
                       'customer.fct_customer_business_monthly_status'::regclass,
                       'customer.fct_customer_plan_monthly_status'::regclass)
         AND (pg_catalog.has_table_privilege('cmdm_etl', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
              OR pg_catalog.has_table_privilege('cmdm_reader', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
              OR pg_catalog.has_any_column_privilege('cmdm_etl', c.oid, 'INSERT, UPDATE, REFERENCES'))$$,
    'no output table (nor any of its columns) is writable by cmdm_etl or cmdm_reader');

-- ======================================================= fixtures
-- fact(month, company, plan, AUM): product line TAP-PL1, portfolio TAP-G1, branch TAP-B1
PREPARE tap_fact(date, text, text, numeric) AS
    INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码",
                                   "期末资产规模", "机构代码")
    VALUES ($1, $2, $3, 'TAP-PL1', 'TAP-G1', $4, 'TAP-B1');
CREATE TEMP VIEW tap_runs AS
SELECT r.period, r.step, r.trigger_kind, r.outcome, r.run_by
  FROM cmdm.hook_run r
 WHERE r.period >= DATE '2191-01-01' AND r.period < DATE '2192-01-01';
CREATE TEMP VIEW tap_contracts AS
SELECT c.company_id, c.plan_code, c.valid_from, c.valid_to, c.contract_status
  FROM customer.customer_plan_contract c
 WHERE c.company_id LIKE 'TAP-%';
CREATE TEMP VIEW tap_snapshots AS
SELECT s.snapshot_month, s.company_id, s.aum_balance, s.is_winning_this_year
  FROM customer.fct_customer_business_monthly_status s
 WHERE s.company_id LIKE 'TAP-%';
GRANT SELECT ON tap_runs, tap_contracts, tap_snapshots TO cmdm_etl, cmdm_reader;

-- ======================================================= cmdm_etl cannot run code as cmdm_owner
-- The generated functions keep scratch tables in pg_temp, the session's temporary schema,
-- which the caller shares and (with TEMPORARY on the database, PUBLIC's by default) may
-- create tables in. A table the ETL created there under a scratch table's name, with a
-- trigger, must not be used: its trigger would run the ETL's code as cmdm_owner when the
-- hook truncates or fills it. Each trap is set and the load committed (SET CONSTRAINTS)
-- inside a block that is always undone; only a temporary sequence, which a rollback does
-- not reset, remembers whether the ETL's code ran as cmdm_owner.
CREATE TEMP SEQUENCE tap_escalations_sync;
CREATE TEMP SEQUENCE tap_escalations_snapshot;
GRANT USAGE ON SEQUENCE tap_escalations_sync, tap_escalations_snapshot TO cmdm_owner;
CREATE TEMP TABLE tap_trap_outcome (trap text, stage text, sqlstate text, message text);
GRANT INSERT ON tap_trap_outcome TO cmdm_etl;
CREATE FUNCTION pg_temp.tap_trap(p_trap text, p_scratch_table text) RETURNS void
    LANGUAGE plpgsql AS $trap$
DECLARE
    v_stage text := 'setup';
BEGIN
    IF NOT pg_catalog.has_database_privilege(current_user, pg_catalog.current_database(), 'TEMPORARY') THEN
        INSERT INTO pg_temp.tap_trap_outcome VALUES (p_trap, 'no TEMPORARY privilege: no trap possible', NULL, NULL);
        RETURN;
    END IF;
    BEGIN
        EXECUTE pg_catalog.format($f$
            CREATE FUNCTION pg_temp.tap_escalate() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN
                IF current_user = 'cmdm_owner' THEN
                    PERFORM pg_catalog.nextval('pg_temp.%I');
                END IF;
                RETURN NULL;
            END $body$$f$, 'tap_escalations_' || p_trap);
        EXECUTE pg_catalog.format('CREATE TEMP TABLE %I (tap_trap integer)', p_scratch_table);
        EXECUTE pg_catalog.format('GRANT ALL ON pg_temp.%I TO cmdm_owner', p_scratch_table);
        EXECUTE pg_catalog.format('CREATE TRIGGER tap_escalate BEFORE TRUNCATE ON pg_temp.%I '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.tap_escalate()', p_scratch_table);
        EXECUTE pg_catalog.format('CREATE TRIGGER tap_escalate_rows BEFORE INSERT OR UPDATE OR DELETE ON pg_temp.%I '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.tap_escalate()', p_scratch_table);
        v_stage := 'load';
        INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('TAP-C9', 'pgTAP TAP-C9');
        INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL9', 'TAP 产品线九');
        INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码",
                                       "期末资产规模", "机构代码")
        VALUES ('2191-01-31', 'TAP-C9', 'TAP-P9', 'TAP-PL9', 'TAP-G1', 9, 'TAP-B1');
        SET CONSTRAINTS ALL IMMEDIATE;
        RAISE EXCEPTION USING ERRCODE = 'TAP01', MESSAGE = 'the load committed; undone';
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO pg_temp.tap_trap_outcome VALUES (p_trap, v_stage, SQLSTATE, SQLERRM);
    END;
END
$trap$;
GRANT EXECUTE ON FUNCTION pg_temp.tap_trap(text, text) TO cmdm_etl;

SET LOCAL ROLE cmdm_etl;
SELECT pg_temp.tap_trap('sync', 'cmdm_sync_month');         -- the first scratch table of contract_sync
SELECT pg_temp.tap_trap('snapshot', 'cmdm_snap_plan');      -- the first of snapshot_refresh
RESET ROLE;
SET CONSTRAINTS ALL DEFERRED;
SELECT set_eq(
    $$SELECT trap, stage IN ('load', 'no TEMPORARY privilege: no trap possible') FROM tap_trap_outcome$$,
    $$VALUES ('sync', true), ('snapshot', true)$$,
    'both traps were set (or cmdm_etl cannot create temporary tables at all)');
SELECT is((SELECT is_called FROM tap_escalations_sync), false,
    'a trigger cmdm_etl put on a table named like the sync''s scratch table (pg_temp.cmdm_sync_month) never runs as cmdm_owner');
SELECT is((SELECT is_called FROM tap_escalations_snapshot), false,
    'a trigger cmdm_etl put on a table named like the refresh''s scratch table (pg_temp.cmdm_snap_plan) never runs as cmdm_owner');
SELECT is_empty($$SELECT * FROM tap_contracts WHERE company_id = 'TAP-C9'$$, 'the traps'' loads were undone');

-- ======================================================= behaviour: cmdm_etl loads, its commit runs the hooks
SET LOCAL ROLE cmdm_etl;
SELECT lives_ok(
    $$INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL1', 'TAP 产品线一');
      INSERT INTO customer."年金客户" (company_id, "客户名称")
      SELECT c, 'pgTAP ' || c FROM unnest(ARRAY['TAP-C1', 'TAP-C2']) c$$,
    'cmdm_etl loads the product line and the companies');
SELECT lives_ok($$EXECUTE tap_fact('2191-01-31', 'TAP-C1', 'TAP-P1', 100)$$, 'cmdm_etl inserts a January fact');
SELECT lives_ok(
    $$INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码", "期末资产规模", "机构代码")
      VALUES ('2191-01-31', 'TAP-C2', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 5, 'TAP-B1'),
             ('2191-02-28', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 110, 'TAP-B1'),
             ('2191-02-28', 'TAP-C2', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 1, 'TAP-B1')$$,
    'cmdm_etl inserts January and February facts');
SELECT lives_ok($$UPDATE business."规模明细" SET "期末资产规模" = 120
                   WHERE company_id = 'TAP-C1' AND "月度" = '2191-02-28'$$, 'cmdm_etl updates a fact');
SELECT lives_ok($$DELETE FROM business."规模明细" WHERE company_id = 'TAP-C2' AND "月度" = '2191-02-28'$$,
                'cmdm_etl deletes a fact');
SELECT throws_ok($$SELECT * FROM cmdm.hook_queue$$, '42501', 'permission denied for table hook_queue',
                 'cmdm_etl cannot read the queue its statements filled');
RESET ROLE;
SELECT set_eq(
    $$SELECT q.domain, q.kind, q.period FROM cmdm.hook_queue q WHERE q.txid = pg_current_xact_id()$$,
    $$VALUES ('annuity_performance', 'facts', DATE '2191-01-01'),
             ('annuity_performance', 'facts', DATE '2191-02-01')$$,
    'the triggers queued cmdm_etl''s months (as cmdm_owner)');

SET LOCAL ROLE cmdm_etl;
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE',
    'cmdm_etl''s commit (SET CONSTRAINTS ALL IMMEDIATE) runs the hooks under its privileges');
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(
    $$SELECT period, step, trigger_kind, outcome, run_by = session_user FROM tap_runs ORDER BY step, period$$,
    $$VALUES (DATE '2191-01-31', 'contract_sync', 'trigger', 'succeeded', true),
             (DATE '2191-02-28', 'contract_sync', 'trigger', 'succeeded', true),
             (DATE '2191-01-31', 'snapshot_refresh', 'trigger', 'succeeded', true),
             (DATE '2191-02-28', 'snapshot_refresh', 'trigger', 'succeeded', true)$$,
    'the hook ran once per month and logged who loaded (run_by = the session user)');
SELECT set_eq('SELECT company_id, valid_from, valid_to, contract_status FROM tap_contracts',
    $$VALUES ('TAP-C1', DATE '2191-01-31', DATE '9999-12-31', '正常'),
             ('TAP-C2', DATE '2191-01-31', DATE '2191-02-28', '正常'),
             ('TAP-C2', DATE '2191-02-28', DATE '9999-12-31', '停缴')$$,
    'the hook wrote the contract history cmdm_etl may not write itself');
SELECT set_eq('SELECT snapshot_month, company_id, aum_balance FROM tap_snapshots',
    $$VALUES (DATE '2191-01-31', 'TAP-C1', 100.00), (DATE '2191-01-31', 'TAP-C2', 5.00),
             (DATE '2191-02-28', 'TAP-C1', 120.00), (DATE '2191-02-28', 'TAP-C2', 0.00)$$,
    'the hook wrote the snapshots (with the UPDATE''s value, without the DELETEd row)');
SELECT is((SELECT pg_catalog.count(*)::int FROM customer.fct_customer_plan_monthly_status
            WHERE company_id LIKE 'TAP-%' AND snapshot_month = '2191-02-28'),
          2, 'the hook wrote the plan snapshots');

-- events: cmdm_etl loads an award; its commit refreshes the month
SELECT lives_ok($$INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
                  VALUES ('TAP-C2', 'TAP-PL1', 'TAP-P1', '2191-02-10')$$, 'cmdm_etl loads an award');
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE', 'cmdm_etl''s commit refreshes the award''s months');
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(
    $$SELECT snapshot_month, is_winning_this_year FROM tap_snapshots WHERE company_id = 'TAP-C2' ORDER BY 1$$,
    $$VALUES (DATE '2191-01-31', false), (DATE '2191-02-28', true)$$,
    'the award is in the snapshots from its month on');

-- the switch and the explicit CALL
SET LOCAL cmdm.post_hooks = off;
SELECT lives_ok($$EXECUTE tap_fact('2191-03-31', 'TAP-C1', 'TAP-P1', 130)$$,
                'cmdm_etl loads March with SET LOCAL cmdm.post_hooks = off');
SELECT lives_ok($$CALL customer.run_post_etl_hooks('annuity_performance', '2191-03-31')$$,
                'cmdm_etl CALLs customer.run_post_etl_hooks for March');
SELECT results_eq(
    $$SELECT step, trigger_kind, outcome, run_by = session_user FROM tap_runs WHERE period = '2191-03-31' ORDER BY step$$,
    $$VALUES ('contract_sync', 'call', 'succeeded', true),
             ('snapshot_refresh', 'call', 'succeeded', true)$$,
    'the CALL ran and logged both steps');
SELECT is((SELECT aum_balance FROM tap_snapshots WHERE company_id = 'TAP-C1' AND snapshot_month = '2191-03-31'),
          130.00, 'the CALL refreshed March');
SET LOCAL cmdm.post_hooks = on;
RESET ROLE;

-- cmdm_reader sees what cmdm_etl's loads produced
SET LOCAL ROLE cmdm_reader;
SELECT is((SELECT pg_catalog.count(*)::int FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%'),
          3, 'cmdm_reader reads the contract history the hook wrote');
SELECT set_eq('SELECT snapshot_month, company_id, aum_balance FROM customer.fct_customer_business_monthly_status WHERE company_id LIKE ''TAP-%''',
    $$VALUES (DATE '2191-01-31', 'TAP-C1', 100.00), (DATE '2191-01-31', 'TAP-C2', 5.00),
             (DATE '2191-02-28', 'TAP-C1', 120.00), (DATE '2191-02-28', 'TAP-C2', 0.00),
             (DATE '2191-03-31', 'TAP-C1', 130.00), (DATE '2191-03-31', 'TAP-C2', 0.00)$$,
    'cmdm_reader reads the business snapshots the hook wrote');
RESET ROLE;

-- ======================================================= cmdm_etl: error codes
SET LOCAL ROLE cmdm_etl;
SELECT throws_ok($$SELECT * FROM cmdm.run_hooks('annuity_performance', ARRAY[DATE '2191-01-31'])$$,
    '42501', 'permission denied for function run_hooks', 'cmdm_etl cannot execute cmdm.run_hooks');
SELECT throws_ok($$SELECT cmdm.set_hook_domain('annuity_performance', false)$$,
    '42501', 'permission denied for function set_hook_domain', 'cmdm_etl cannot execute cmdm.set_hook_domain');
SELECT throws_ok($$SELECT cmdm.post_hooks_enabled()$$,
    '42501', 'permission denied for function post_hooks_enabled', 'cmdm_etl cannot execute cmdm.post_hooks_enabled');
SELECT throws_ok($$SELECT * FROM customer.sync_contract_status('2191-01-31')$$,
    '42501', 'permission denied for function sync_contract_status', 'cmdm_etl cannot execute customer.sync_contract_status');
SELECT throws_ok($$SELECT * FROM customer.refresh_monthly_snapshot('2191-01-31')$$,
    '42501', 'permission denied for function refresh_monthly_snapshot', 'cmdm_etl cannot execute customer.refresh_monthly_snapshot');
SELECT throws_ok($$SELECT * FROM customer.contract_dependent_months('2191-01-31')$$,
    '42501', 'permission denied for function contract_dependent_months', 'cmdm_etl cannot execute customer.contract_dependent_months');
SELECT throws_ok($$SELECT * FROM customer.event_dependent_months('2191-01-31')$$,
    '42501', 'permission denied for function event_dependent_months', 'cmdm_etl cannot execute customer.event_dependent_months');
SELECT throws_ok($$SELECT * FROM customer.loaded_months()$$,
    '42501', 'permission denied for function loaded_months', 'cmdm_etl cannot execute customer.loaded_months');
SELECT throws_ok($$SELECT cmdm.tg_facts__queue_hooks()$$,
    '42501', 'permission denied for function tg_facts__queue_hooks', 'cmdm_etl cannot execute cmdm.tg_facts__queue_hooks');
SELECT throws_ok($$SELECT cmdm.tg_events__queue_hooks()$$,
    '42501', 'permission denied for function tg_events__queue_hooks', 'cmdm_etl cannot execute cmdm.tg_events__queue_hooks');
SELECT throws_ok($$SELECT cmdm.tg_hook_queue__run_at_commit()$$,
    '42501', 'permission denied for function tg_hook_queue__run_at_commit', 'cmdm_etl cannot execute cmdm.tg_hook_queue__run_at_commit');
SELECT throws_ok($$SELECT cmdm.tg_inputs__queue_truncate()$$,
    '42501', 'permission denied for function tg_inputs__queue_truncate', 'cmdm_etl cannot execute cmdm.tg_inputs__queue_truncate');
SELECT throws_ok($$SELECT cmdm.tg_product_line__propagate_name()$$,
    '42501', 'permission denied for function tg_product_line__propagate_name', 'cmdm_etl cannot execute cmdm.tg_product_line__propagate_name');

SELECT throws_ok($$DELETE FROM customer.customer_plan_contract WHERE company_id = 'TAP-C1'$$,
    '42501', 'permission denied for table customer_plan_contract', 'cmdm_etl cannot delete contract versions');
SELECT throws_ok($$UPDATE customer.fct_customer_business_monthly_status SET aum_balance = 0 WHERE company_id = 'TAP-C1'$$,
    '42501', 'permission denied for table fct_customer_business_monthly_status', 'cmdm_etl cannot update business snapshots');
SELECT throws_ok($$DELETE FROM customer.fct_customer_business_monthly_status WHERE company_id = 'TAP-C1'$$,
    '42501', 'permission denied for table fct_customer_business_monthly_status', 'cmdm_etl cannot delete business snapshots');
SELECT throws_ok($$UPDATE customer.fct_customer_plan_monthly_status SET aum_balance = 0 WHERE company_id = 'TAP-C1'$$,
    '42501', 'permission denied for table fct_customer_plan_monthly_status', 'cmdm_etl cannot update plan snapshots');
SELECT throws_ok($$DELETE FROM customer.fct_customer_plan_monthly_status WHERE company_id = 'TAP-C1'$$,
    '42501', 'permission denied for table fct_customer_plan_monthly_status', 'cmdm_etl cannot delete plan snapshots');

SELECT throws_ok($$INSERT INTO cmdm.hook_queue (domain, kind, period) VALUES ('annuity_performance', 'facts', '2191-04-01')$$,
    '42501', 'permission denied for table hook_queue', 'cmdm_etl cannot queue months itself');
SELECT throws_ok($$DELETE FROM cmdm.hook_queue$$,
    '42501', 'permission denied for table hook_queue', 'cmdm_etl cannot empty the queue (skip its commit''s hooks)');
SELECT throws_ok($$INSERT INTO cmdm.backfill_run (domain, from_period, to_period) VALUES ('annuity_performance', '2191-01-31', '2191-02-28')$$,
    '42501', 'permission denied for table backfill_run', 'cmdm_etl cannot start a backfill record');
SELECT throws_ok($$UPDATE cmdm.backfill_run SET finished_at = now()$$,
    '42501', 'permission denied for table backfill_run', 'cmdm_etl cannot finish a backfill record');
SELECT throws_ok($$UPDATE cmdm.hook_run SET outcome = 'succeeded' WHERE period = '2191-01-31'$$,
    '42501', 'permission denied for table hook_run', 'cmdm_etl cannot rewrite the hook runs');
SELECT throws_ok($$DELETE FROM cmdm.hook_run WHERE period = '2191-01-31'$$,
    '42501', 'permission denied for table hook_run', 'cmdm_etl cannot delete the hook runs');
SELECT throws_ok($$DELETE FROM cmdm.rejected_fact WHERE period = '2191-01-31'$$,
    '42501', 'permission denied for table rejected_fact', 'cmdm_etl cannot delete rejects');
SELECT throws_ok($$INSERT INTO cmdm.hook_domain (domain, description) VALUES ('tap_domain', 'TAP')$$,
    '42501', 'permission denied for table hook_domain', 'cmdm_etl cannot add a hook domain');
SELECT throws_ok($$UPDATE cmdm.post_etl_hook SET enabled = false WHERE domain = 'annuity_performance'$$,
    '42501', 'permission denied for table post_etl_hook', 'cmdm_etl cannot disable a step');
SELECT throws_ok($$UPDATE cmdm.rule_deployment SET sha256 = sha256$$,
    '42501', 'permission denied for table rule_deployment', 'cmdm_etl cannot rewrite the rules deployments');
SELECT throws_ok($$DELETE FROM cmdm.managed_object WHERE object_type = 'function'$$,
    '42501', 'permission denied for table managed_object', 'cmdm_etl cannot edit the managed objects');
-- the ways around triggers are closed too
SELECT throws_ok($$SET session_replication_role = replica$$,
    '42501', 'permission denied to set parameter "session_replication_role"',
    'cmdm_etl cannot switch off triggers with session_replication_role');
SELECT throws_ok($$CREATE TABLE cmdm.hook_queue_tap (x integer)$$,
    '42501', 'permission denied for schema cmdm', 'cmdm_etl cannot create objects in schema cmdm');
RESET ROLE;

-- ======================================================= cmdm_reader: error codes
SET LOCAL ROLE cmdm_reader;
SELECT throws_ok($$CALL customer.run_post_etl_hooks('annuity_performance', '2191-01-31')$$,
    '42501', 'permission denied for procedure run_post_etl_hooks', 'cmdm_reader cannot CALL the hooks');
SELECT throws_ok($$SELECT * FROM customer.sync_contract_status('2191-01-31')$$,
    '42501', 'permission denied for function sync_contract_status', 'cmdm_reader cannot execute customer.sync_contract_status');
SELECT throws_ok($$SELECT * FROM customer.refresh_monthly_snapshot('2191-01-31')$$,
    '42501', 'permission denied for function refresh_monthly_snapshot', 'cmdm_reader cannot execute customer.refresh_monthly_snapshot');
SELECT throws_ok($$SELECT * FROM customer.loaded_months()$$,
    '42501', 'permission denied for function loaded_months', 'cmdm_reader cannot execute customer.loaded_months');
SELECT throws_ok($$SELECT * FROM cmdm.run_hooks('annuity_performance', ARRAY[DATE '2191-01-31'])$$,
    '42501', 'permission denied for schema cmdm', 'cmdm_reader cannot reach cmdm.run_hooks');
SELECT throws_ok($$INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "期末资产规模")
                   VALUES ('2191-04-30', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 1)$$,
    '42501', 'permission denied for schema business', 'cmdm_reader cannot load facts');
SELECT throws_ok($$INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
                   VALUES ('TAP-C1', 'TAP-PL1', 'TAP-P1', '2191-04-10')$$,
    '42501', 'permission denied for table 当年中标', 'cmdm_reader cannot load awards');
SELECT throws_ok($$DELETE FROM customer."当年流失"$$,
    '42501', 'permission denied for table 当年流失', 'cmdm_reader cannot delete losses');
SELECT throws_ok($$SELECT * FROM customer."当年中标"$$,
    '42501', 'permission denied for table 当年中标', 'cmdm_reader cannot read the awards (an input)');
SELECT throws_ok($$DELETE FROM customer.customer_plan_contract WHERE company_id = 'TAP-C1'$$,
    '42501', 'permission denied for table customer_plan_contract', 'cmdm_reader cannot delete contract versions');
SELECT throws_ok($$UPDATE customer.fct_customer_plan_monthly_status SET aum_balance = 0 WHERE company_id = 'TAP-C1'$$,
    '42501', 'permission denied for table fct_customer_plan_monthly_status', 'cmdm_reader cannot update plan snapshots');
SELECT throws_ok($$TRUNCATE customer.fct_customer_business_monthly_status$$,
    '42501', 'permission denied for table fct_customer_business_monthly_status', 'cmdm_reader cannot truncate business snapshots');
SELECT throws_ok($$SELECT * FROM cmdm.hook_queue$$,
    '42501', 'permission denied for schema cmdm', 'cmdm_reader cannot reach the queue');
SELECT throws_ok($$SELECT * FROM cmdm.backfill_run$$,
    '42501', 'permission denied for schema cmdm', 'cmdm_reader cannot reach the backfill runs');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
