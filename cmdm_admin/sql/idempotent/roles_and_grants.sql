/*
 * Roles, ownership and privileges of cmdm (DESIGN §8). Idempotent; run after every upgrade
 * inside the migration's transaction, so it always describes the deployed objects.
 *
 *   cmdm_owner   owns every object cmdm created; SECURITY DEFINER functions run as it
 *   cmdm_etl     loads the input tables and CALLs the hooks; cannot write outputs
 *   cmdm_reader  reads the outputs, nothing else
 *   PUBLIC       executes nothing of ours
 *
 * The roles are NOLOGIN groups: grant them to login roles (GRANT cmdm_etl TO etl_service).
 * Roles are cluster-wide, so `downgrade base` leaves them in place.
 */

DO $roles$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['cmdm_owner', 'cmdm_etl', 'cmdm_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', v_role);
        END IF;
    END LOOP;
END
$roles$;

-- Ownership: everything registered as created by cmdm belongs to cmdm_owner. Schemas and
-- input tables that existed before cmdm (the ETL's) keep their owner.
-- Only objects owned by another role are altered: ALTER TABLE ... OWNER takes an ACCESS
-- EXCLUSIVE lock even when the owner stays the same, and this script runs after every
-- upgrade, so altering every table each time would queue each deploy behind the ETL's open
-- transaction on the facts table (and every reader behind the deploy).
-- (Statements are collected first: ALTER TABLE cannot run on managed_object while a loop
-- still reads it.)
DO $ownership$
DECLARE
    v_statement text;
BEGIN
    FOREACH v_statement IN ARRAY ARRAY(
        SELECT pg_catalog.format('ALTER %s %s OWNER TO cmdm_owner',
                                 upper(m.object_type), m.object_identity)
          FROM cmdm.managed_object m
         WHERE m.object_type IN ('schema', 'table', 'function', 'procedure')
           AND CASE m.object_type
                   WHEN 'schema' THEN (SELECT n.nspowner FROM pg_catalog.pg_namespace n
                                        WHERE n.oid = pg_catalog.to_regnamespace(m.object_identity))
                   WHEN 'table' THEN (SELECT c.relowner FROM pg_catalog.pg_class c
                                       WHERE c.oid = pg_catalog.to_regclass(m.object_identity))
                   ELSE (SELECT p.proowner FROM pg_catalog.pg_proc p
                          WHERE p.oid = pg_catalog.to_regprocedure(m.object_identity))
               END IS DISTINCT FROM 'cmdm_owner'::regrole
         ORDER BY m.managed_object_id)
    LOOP
        EXECUTE v_statement;
    END LOOP;
END
$ownership$;

-- Schemas. Nobody but cmdm_owner may create objects in the schemas cmdm writes to, so a
-- hostile object cannot shadow ours.
REVOKE ALL ON SCHEMA cmdm FROM PUBLIC;
GRANT USAGE ON SCHEMA mapping, business, customer TO cmdm_owner, cmdm_etl;
GRANT USAGE ON SCHEMA customer TO cmdm_reader;
GRANT USAGE ON SCHEMA cmdm TO cmdm_etl;

-- Input tables: the ETL writes them; cmdm's functions (running as cmdm_owner) read them.
GRANT SELECT ON mapping."产品线", customer."年金客户", business."规模明细",
                customer."当年中标", customer."当年流失" TO cmdm_owner;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE
   ON mapping."产品线", customer."年金客户", business."规模明细",
      customer."当年中标", customer."当年流失" TO cmdm_etl;

-- Output tables: written only by cmdm_owner (through the functions); read by everyone we name.
REVOKE ALL ON customer.customer_plan_contract,
              customer.fct_customer_business_monthly_status,
              customer.fct_customer_plan_monthly_status FROM PUBLIC, cmdm_etl, cmdm_reader;
GRANT SELECT ON customer.customer_plan_contract,
                customer.fct_customer_business_monthly_status,
                customer.fct_customer_plan_monthly_status TO cmdm_reader, cmdm_etl;
DO $contract_key$
BEGIN
    IF pg_catalog.to_regclass('customer.contract_key') IS NOT NULL THEN
        REVOKE ALL ON customer.contract_key FROM PUBLIC, cmdm_etl, cmdm_reader;
        GRANT SELECT ON customer.contract_key TO cmdm_reader, cmdm_etl;
    END IF;
END
$contract_key$;
-- The annual decisions (migration 0008) are outputs too: read like the history.
DO $annual$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['customer.annual_reference', 'customer.annual_company_status',
                                   'customer.annual_product_line_status',
                                   'customer.annual_plan_status'] LOOP
        IF pg_catalog.to_regclass(v_table) IS NOT NULL THEN
            EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC, cmdm_etl, cmdm_reader', v_table);
            EXECUTE pg_catalog.format('GRANT SELECT ON %s TO cmdm_reader, cmdm_etl', v_table);
        END IF;
    END LOOP;
END
$annual$;

-- cmdm's own tables: nobody writes them directly; the ETL may read its hook runs and rejects.
REVOKE ALL ON ALL TABLES IN SCHEMA cmdm FROM PUBLIC, cmdm_etl, cmdm_reader;
GRANT SELECT ON cmdm.hook_run, cmdm.rejected_fact, cmdm.hook_domain, cmdm.post_etl_hook
   TO cmdm_etl;
DO $backfill$
BEGIN
    IF pg_catalog.to_regclass('cmdm.backfill_run') IS NOT NULL THEN
        GRANT SELECT ON cmdm.backfill_run TO cmdm_etl;
    END IF;
END
$backfill$;
-- The months its loads left stale (migration 0011) are the ETL's to see. cmdm.hook_lock
-- gets no grant at all: locking its rows (the hooks' serialization) takes UPDATE on it,
-- which only its owner, cmdm_owner, has; so no other role can stall the hooks.
DO $stale$
BEGIN
    IF pg_catalog.to_regclass('cmdm.stale_change') IS NOT NULL THEN
        GRANT SELECT ON cmdm.stale_change TO cmdm_etl;
    END IF;
END
$stale$;

-- What the ETL's and operators' monitoring commands read (cmdm status, explain, report,
-- check, migrate current, deploy-rules --check; docs/security.md, "What each role may
-- run"): which rules are deployed, what cmdm created, and the migration version.
GRANT SELECT ON cmdm.rule_deployment, cmdm.managed_object TO cmdm_etl;
DO $version$
BEGIN
    IF pg_catalog.to_regclass('public.cmdm_alembic_version') IS NOT NULL THEN
        GRANT SELECT ON public.cmdm_alembic_version TO cmdm_etl;
    END IF;
END
$version$;

-- The generated functions keep per-call scratch tables in pg_temp (dropped at commit), so
-- the role they run as needs TEMPORARY on this database, whatever PUBLIC has.
DO $temporary$
BEGIN
    EXECUTE pg_catalog.format('GRANT TEMPORARY ON DATABASE %I TO cmdm_owner',
                              pg_catalog.current_database());
END
$temporary$;

-- Functions: PUBLIC executes nothing of ours, now or later.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cmdm FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE cmdm_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
DO $functions$
DECLARE
    v_statement text;
BEGIN
    FOREACH v_statement IN ARRAY ARRAY(
        SELECT pg_catalog.format('REVOKE EXECUTE ON %s %s FROM PUBLIC',
                                 upper(object_type), object_identity)
          FROM cmdm.managed_object
         WHERE object_type IN ('function', 'procedure')
         ORDER BY managed_object_id)
    LOOP
        EXECUTE v_statement;
    END LOOP;
END
$functions$;

-- The ETL's one entry point: CALL customer.run_post_etl_hooks (the triggers need no grant:
-- their functions run as cmdm_owner). Everything else is for cmdm_owner and the admin CLI.
DO $etl$
BEGIN
    IF pg_catalog.to_regprocedure('customer.run_post_etl_hooks(text, date)') IS NOT NULL THEN
        GRANT EXECUTE ON PROCEDURE customer.run_post_etl_hooks(text, date) TO cmdm_etl;
    END IF;
END
$etl$;
