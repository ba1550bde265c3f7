-- cmdm-verify: read-only
-- 060: cmdm.tg_set_updated_at() and the _100_set_updated_at trigger on the three output
-- tables: BEFORE UPDATE, FOR EACH ROW, WHEN (OLD.* IS DISTINCT FROM NEW.*). Read-only
-- (catalog only); the trigger at work is 061_updated_at_behaviour.sql.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(14);

-- ======================================================= structure: the function
SELECT has_function('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'function cmdm.tg_set_updated_at() exists');
SELECT function_returns('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'trigger', 'cmdm.tg_set_updated_at() returns trigger');
SELECT function_lang_is('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'plpgsql', 'cmdm.tg_set_updated_at() is plpgsql');
SELECT isnt_definer('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'cmdm.tg_set_updated_at() is not SECURITY DEFINER');
SELECT is(
    (SELECT proconfig FROM pg_catalog.pg_proc WHERE oid = 'cmdm.tg_set_updated_at()'::regprocedure),
    ARRAY['search_path=pg_catalog, pg_temp'],
    'cmdm.tg_set_updated_at() pins search_path = pg_catalog, pg_temp');

-- ======================================================= structure: the triggers
SELECT has_trigger('customer', 'customer_plan_contract', '_100_set_updated_at',
    'customer_plan_contract has trigger _100_set_updated_at');
SELECT trigger_is('customer', 'customer_plan_contract', '_100_set_updated_at', 'cmdm', 'tg_set_updated_at',
    'customer_plan_contract._100_set_updated_at calls cmdm.tg_set_updated_at()');
SELECT is(
    (SELECT pg_catalog.pg_get_triggerdef(oid) FROM pg_catalog.pg_trigger
      WHERE tgrelid = 'customer.customer_plan_contract'::regclass AND tgname = '_100_set_updated_at'),
    'CREATE TRIGGER _100_set_updated_at BEFORE UPDATE ON customer.customer_plan_contract '
        'FOR EACH ROW WHEN ((old.* IS DISTINCT FROM new.*)) EXECUTE FUNCTION cmdm.tg_set_updated_at()',
    'customer_plan_contract: BEFORE UPDATE FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)');

SELECT has_trigger('customer', 'fct_customer_business_monthly_status', '_100_set_updated_at',
    'fct_customer_business_monthly_status has trigger _100_set_updated_at');
SELECT trigger_is('customer', 'fct_customer_business_monthly_status', '_100_set_updated_at', 'cmdm', 'tg_set_updated_at',
    'fct_customer_business_monthly_status._100_set_updated_at calls cmdm.tg_set_updated_at()');
SELECT is(
    (SELECT pg_catalog.pg_get_triggerdef(oid) FROM pg_catalog.pg_trigger
      WHERE tgrelid = 'customer.fct_customer_business_monthly_status'::regclass AND tgname = '_100_set_updated_at'),
    'CREATE TRIGGER _100_set_updated_at BEFORE UPDATE ON customer.fct_customer_business_monthly_status '
        'FOR EACH ROW WHEN ((old.* IS DISTINCT FROM new.*)) EXECUTE FUNCTION cmdm.tg_set_updated_at()',
    'fct_customer_business_monthly_status: BEFORE UPDATE FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)');

SELECT has_trigger('customer', 'fct_customer_plan_monthly_status', '_100_set_updated_at',
    'fct_customer_plan_monthly_status has trigger _100_set_updated_at');
SELECT trigger_is('customer', 'fct_customer_plan_monthly_status', '_100_set_updated_at', 'cmdm', 'tg_set_updated_at',
    'fct_customer_plan_monthly_status._100_set_updated_at calls cmdm.tg_set_updated_at()');
SELECT is(
    (SELECT pg_catalog.pg_get_triggerdef(oid) FROM pg_catalog.pg_trigger
      WHERE tgrelid = 'customer.fct_customer_plan_monthly_status'::regclass AND tgname = '_100_set_updated_at'),
    'CREATE TRIGGER _100_set_updated_at BEFORE UPDATE ON customer.fct_customer_plan_monthly_status '
        'FOR EACH ROW WHEN ((old.* IS DISTINCT FROM new.*)) EXECUTE FUNCTION cmdm.tg_set_updated_at()',
    'fct_customer_plan_monthly_status: BEFORE UPDATE FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)');

SELECT * FROM finish();
ROLLBACK;
