-- cmdm-verify: scratch
-- 051: cmdm's own tables at work (their structure is 050_cmdm_tables.sql): the hook-registry
-- seed of a fresh database, defaults, and the checks and keys rejecting rows. Scratch: it
-- writes cmdm's tables.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(24);

-- ======================================================= behaviour
SELECT results_eq(
    $$SELECT domain, enabled FROM cmdm.hook_domain ORDER BY domain$$,
    $$VALUES ('annuity_performance', true)$$,
    'hook_domain is seeded with annuity_performance, enabled');
SELECT results_eq(
    $$SELECT domain, step_order, step, enabled FROM cmdm.post_etl_hook ORDER BY domain, step_order$$,
    $$VALUES ('annuity_performance', 1, 'contract_sync', true),
             ('annuity_performance', 2, 'snapshot_refresh', true)$$,
    'post_etl_hook is seeded with contract_sync (1) then snapshot_refresh (2)');
SELECT lives_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'call', 'succeeded')$$,
    'a minimal hook_run row is accepted');
SELECT results_eq(
    $$SELECT counts, rejects, run_by = session_user, txid = pg_current_xact_id(), started_at >= now()
        FROM cmdm.hook_run WHERE domain = 'pgtap_domain'$$,
    $$VALUES ('{}'::jsonb, 0, true, true, true)$$,
    'hook_run defaults: counts {}, rejects 0, run_by session_user, txid of this transaction, started_at clock time');
SELECT lives_ok(
    $$INSERT INTO cmdm.rejected_fact (period, reason, plan_code, aum)
      VALUES ('2025-02-28', 'null_key', 'PGTAP_P1', 1.5),
             ('2025-02-28', 'unknown_product_line', 'PGTAP_P1', 1.5),
             ('2025-02-28', 'unknown_company', 'PGTAP_P1', 1.5)$$,
    'rejected_fact accepts each allowed reason at a month-end period');
SELECT lives_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev', repeat('0123456789abcdef', 4), '{}'::jsonb)$$,
    'rule_deployment accepts a lower-case hex sha256');
SELECT results_eq(
    $$SELECT functions, deployed_by = session_user, down_revision FROM cmdm.rule_deployment WHERE revision = 'pgtap_rev'$$,
    $$VALUES ('{}'::text[], true, NULL::text)$$,
    'rule_deployment defaults: functions {}, deployed_by session_user');
SELECT lives_ok(
    $$DELETE FROM cmdm.hook_domain WHERE domain = 'annuity_performance'$$,
    'a hook domain can be deleted');
SELECT is_empty(
    $$SELECT * FROM cmdm.post_etl_hook WHERE domain = 'annuity_performance'$$,
    'deleting a hook domain deletes its steps (ON DELETE CASCADE)');

-- ======================================================= error codes
SELECT throws_ok(
    $$INSERT INTO cmdm.rejected_fact (period, reason) VALUES ('2025-02-28', 'bogus')$$,
    '23514', 'new row for relation "rejected_fact" violates check constraint "rejected_fact_reason_check"',
    'rejected_fact.reason outside the allowed set is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rejected_fact (period, reason) VALUES ('2025-02-15', 'null_key')$$,
    '23514', 'new row for relation "rejected_fact" violates check constraint "rejected_fact_period_check"',
    'rejected_fact.period that is not a month-end is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rejected_fact (rejected_fact_id, period, reason) VALUES (1, '2025-02-28', 'null_key')$$,
    '428C9', NULL,
    'rejected_fact_id cannot be set explicitly (GENERATED ALWAYS)');
SELECT throws_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'cron', 'succeeded')$$,
    '23514', 'new row for relation "hook_run" violates check constraint "hook_run_trigger_kind_check"',
    'hook_run.trigger_kind outside call/trigger/cli is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'call', 'ok')$$,
    '23514', 'new row for relation "hook_run" violates check constraint "hook_run_outcome_check"',
    'hook_run.outcome outside succeeded/failed/skipped is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome, rejects)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'call', 'failed', -1)$$,
    '23514', 'new row for relation "hook_run" violates check constraint "hook_run_rejects_check"',
    'a negative hook_run.rejects is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev_2', repeat('0123456789ABCDEF', 4), '{}'::jsonb)$$,
    '23514', 'new row for relation "rule_deployment" violates check constraint "rule_deployment_sha256_check"',
    'an upper-case sha256 is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev_2', repeat('0123456789abcdef', 4) || '0', '{}'::jsonb)$$,
    '23514', 'new row for relation "rule_deployment" violates check constraint "rule_deployment_sha256_check"',
    'a sha256 of 65 hex digits is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev', repeat('fedcba9876543210', 4), '{}'::jsonb)$$,
    '23505', 'duplicate key value violates unique constraint "rule_deployment_revision_key"',
    'a revision is deployed at most once (unique_violation)');
INSERT INTO cmdm.hook_domain (domain, description) VALUES ('pgtap_domain', 'pgTAP domain');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_domain', 0, 'contract_sync', 'x')$$,
    '23514', 'new row for relation "post_etl_hook" violates check constraint "post_etl_hook_step_order_check"',
    'post_etl_hook.step_order 0 is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_domain', 1, 'contract_sync', 'x'), ('pgtap_domain', 2, 'contract_sync', 'y')$$,
    '23505', 'duplicate key value violates unique constraint "post_etl_hook_domain_step_key"',
    'a step appears once per domain (unique_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_domain', 1, 'contract_sync', 'x'), ('pgtap_domain', 1, 'snapshot_refresh', 'y')$$,
    '23505', 'duplicate key value violates unique constraint "post_etl_hook_pkey"',
    'a step_order appears once per domain (unique_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_no_such_domain', 1, 'contract_sync', 'x')$$,
    '23503', 'insert or update on table "post_etl_hook" violates foreign key constraint "post_etl_hook_domain_fkey"',
    'a step of an unknown domain is rejected (foreign_key_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.managed_object (object_type, object_identity, created_by)
      VALUES ('view', 'customer.pgtap_view', 'pgtap')$$,
    '23514', 'new row for relation "managed_object" violates check constraint "managed_object_object_type_check"',
    'managed_object.object_type outside the allowed set is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.managed_object (object_type, object_identity, created_by)
      SELECT object_type, object_identity, 'pgtap' FROM cmdm.managed_object
       WHERE object_identity = 'customer.customer_plan_contract'$$,
    '23505', 'duplicate key value violates unique constraint "managed_object_object_type_object_identity_key"',
    'an object is registered at most once (unique_violation)');

SELECT * FROM finish();
ROLLBACK;
