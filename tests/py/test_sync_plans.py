"""The plans the hook's statements get from statistics (issue 16): no planner switches steer
them, so this pins their shape where a wrong plan would cost the whole history.

A demo history of 60 months (five years: the versions covering one month-end are a
fifth of the history or less) is loaded through the hook and analyzed; then one company's
facts of month 6 change and that month is synced again with auto_explain sending every
nested statement's plan to this session as a NOTICE (JSON). The plans are read from there:
- the month scan (the facts of one month aggregated per key) reads the facts through the
  month index, never a scan of all months;
- the versions covering the month-end are found through the GiST index on the validity
  range, never a scan of the whole history;
- the versions of the few keys that change are index lookups per key (a nested loop into
  an index of the contract table), never a hash of the whole history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from dbutil import demo_database

from cmdm_admin.demo import DemoSpec

SPEC = DemoSpec(companies=300, months=60, seed=11)
RESTATED = date(2024, 6, 1)
FACTS = "规模明细"
CONTRACTS = "customer_plan_contract"


@pytest.fixture(scope="module")
def history(admin_url: str) -> Iterator[str]:
    with demo_database(admin_url, SPEC) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        yield url


@pytest.fixture(scope="module")
def plans(history: str) -> list[tuple[str, dict]]:
    return plans_of_restatement(history)


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def plans_of_restatement(url: str) -> list[tuple[str, dict]]:
    """(query text, plan) of every statement the sync of the restated month ran."""
    captured: list[str] = []
    with psycopg.connect(url) as conn:
        conn.add_notice_handler(lambda diag: captured.append(diag.message_primary or ""))
        company = conn.execute(
            f'SELECT min(company_id) FROM business."{FACTS}" WHERE "月度" = %s', (RESTATED,)
        ).fetchone()[0]
        conn.execute("SET LOCAL cmdm.post_hooks = off")
        conn.execute(
            f'UPDATE business."{FACTS}" SET "期末资产规模" = "期末资产规模" * 3 + 1 '
            'WHERE "月度" = %s AND company_id = %s',
            (RESTATED, company),
        )
        conn.execute("LOAD 'auto_explain'")
        for setting, value in (
            ("log_min_duration", "0"),
            ("log_nested_statements", "on"),
            ("log_format", "json"),
            ("log_level", "notice"),
        ):
            conn.execute(f"SET LOCAL auto_explain.{setting} = '{value}'")
        conn.execute("SELECT * FROM customer.sync_contract_status(%s)", (RESTATED,))
        conn.rollback()
    plans = []
    for message in captured:
        start = message.find("{")
        if message.startswith("duration:") and start >= 0:
            document = json.loads(message[start:])
            plans.append((document["Query Text"], document["Plan"]))
    return plans


def statement(plans: list[tuple[str, dict]], marker: str) -> dict:
    found = [plan for text, plan in plans if marker in text and "auto_explain" not in text]
    assert found, f"no statement containing {marker!r} among {len(plans)} plans"
    return found[0]


def scans_of(plan: dict, table: str) -> list[dict]:
    return [n for n in nodes(plan) if n.get("Relation Name") == table]


def test_the_month_scan_reads_one_month_through_its_index(plans: list[tuple[str, dict]]) -> None:
    plan = statement(plans, "INSERT INTO pg_temp.cmdm_sync_month")
    scans = scans_of(plan, FACTS)
    assert scans, "the month scan reads the facts table"
    assert all(s["Node Type"] != "Seq Scan" for s in scans), scans
    used = {n.get("Index Name") for n in nodes(plan)}
    assert "idx_规模明细_月度" in used, used


def test_the_covering_versions_come_from_the_validity_index(plans: list[tuple[str, dict]]) -> None:
    plan = statement(plans, "WITH stab AS MATERIALIZED")
    scans = scans_of(plan, CONTRACTS)
    assert scans and all(s["Node Type"] != "Seq Scan" for s in scans), scans
    used = {n.get("Index Name") for n in nodes(plan)}
    assert "idx_contract_validity" in used, used


def test_the_versions_of_changing_keys_are_index_lookups(plans: list[tuple[str, dict]]) -> None:
    plan = statement(plans, "INSERT INTO pg_temp.cmdm_sync_old")
    scans = scans_of(plan, CONTRACTS)
    assert scans and all(s["Node Type"] in ("Index Scan", "Index Only Scan") for s in scans), [
        (s["Node Type"], s.get("Index Name")) for s in scans
    ]
    assert any(n["Node Type"] == "Nested Loop" for n in nodes(plan)), "a lookup per key"


def test_the_valid_to_moves_join_the_scratch_table_on_the_primary_key(
    plans: list[tuple[str, dict]],
) -> None:
    """Each version whose valid_to moves is found by its primary key from a row of the
    sync's scratch table: no `contract_id = ANY (array of every id)` condition, which a
    row re-checked under EvalPlanQual (a concurrent write to the row) evaluated against the
    whole array, once per row (issue 18, finding 2: 64 s for 32,000 moves)."""
    plan = statement(plans, "SET valid_to")
    conditions = [
        str(n.get(key))
        for n in nodes(plan)
        for key in ("Index Cond", "Filter", "Recheck Cond", "Join Filter", "Hash Cond")
        if n.get(key)
    ]
    assert not any("ANY" in c for c in conditions), conditions
    scans = [s for s in scans_of(plan, CONTRACTS) if s["Node Type"] != "ModifyTable"]
    assert scans and all(s.get("Index Name") == "customer_plan_contract_pkey" for s in scans), [
        (s["Node Type"], s.get("Index Name")) for s in scans
    ]
