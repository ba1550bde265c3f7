-- cmdm-verify: scratch
-- 131_hook_privileges_acting: the privileges of 130_hook_privileges.sql at work, acting as
-- each role (SET LOCAL ROLE ... / RESET ROLE): cmdm_etl cannot run code as cmdm_owner
-- (temporary-object traps), a load by cmdm_etl whose commit runs the hooks, and 42501 for
-- everything cmdm_etl and cmdm_reader must not do. Scratch: it writes the ETL's tables.
--
-- A pgTAP file runs in one transaction that is rolled back: `SET CONSTRAINTS ALL
-- IMMEDIATE` fires the deferred commit-time hook exactly as COMMIT would (see 120_hooks).
--
-- Rows kept apart: only year 2191, only TAP-* companies, plans, portfolios, branches and
-- product lines; assertions on hook runs only for those months.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(70);

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
