"""`cmdm check` (DESIGN §4, "Trust, checked"): it finds every kind of wrong stored row, both
ways, says where, exits 1; it writes nothing and does not block a load."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from test_truth_of_history import load
from typer.testing import CliRunner

from cmdm_admin.check import check
from cmdm_admin.cli import app
from cmdm_admin.rebuild import rebuild

runner = CliRunner()
MONTHS = [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)]
OUTPUTS = (
    "customer.customer_plan_contract",
    "customer.fct_customer_business_monthly_status",
    "customer.fct_customer_plan_monthly_status",
    "customer.annual_reference",
    "customer.annual_company_status",
    "customer.annual_product_line_status",
)


def rows_of(month: date) -> list[tuple]:
    """A few companies in two branches; C2's P2 stops in 2025-01 while its P1 goes on."""
    rows = [
        ("P1", "C1", "PL201", Decimal(600_000_000), "B1"),
        ("P1", "C2", "PL201", Decimal(1000), "B1"),
        ("P1", "C3", "PL202", Decimal(0), "B2"),
    ]
    if month < date(2025, 1, 1):
        rows.append(("P2", "C2", "PL201", Decimal(50), "B1"))
    return rows


@pytest.fixture
def loaded(rules_url: str) -> str:
    for month in MONTHS:
        load(rules_url, month, rows_of(month))
    return rules_url


def run_check(url: str, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["check", "--database-url", url, "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def dump(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {t: sorted(map(str, conn.execute(f"SELECT * FROM {t}"))) for t in OUTPUTS}


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def test_a_history_loaded_through_the_hooks_checks_clean(loaded: str) -> None:
    code, data = run_check(loaded)
    assert code == 0 and data["ok"] and data["differences"] == 0
    assert data["from"] == "2024-11" and data["to"] == "2025-02"
    assert data["months_checked"] == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert data["years_checked"] == [2024, 2025]
    human = runner.invoke(app, ["check", "--database-url", loaded])
    assert human.exit_code == 0 and "no differences" in human.stdout


def test_a_hand_edited_snapshot_row_is_different(loaded: str) -> None:
    execute(
        loaded,
        "UPDATE customer.fct_customer_plan_monthly_status SET is_churned = NOT is_churned"
        " WHERE snapshot_month = '2025-01-31' AND company_id = 'C2' AND plan_code = 'P2'",
    )
    code, data = run_check(loaded)
    assert code == 1 and not data["ok"]
    assert data["counts"] == {"customer.fct_customer_plan_monthly_status": {"different": 1}}
    (diff,) = data["sample"]
    assert diff["key"] == {
        "snapshot_month": "2025-01-31",
        "company_id": "C2",
        "plan_code": "P2",
        "product_line_code": "PL201",
    }
    assert (diff["stored"]["is_churned"], diff["expected"]["is_churned"]) == (False, True)
    # a range that leaves the month out does not see it
    assert run_check(loaded, "--from", "2025-02", "--to", "2025-02")[0] == 0
    human = runner.invoke(app, ["check", "--database-url", loaded])
    assert human.exit_code == 1
    assert "is_churned: stored False, expected True" in human.stdout
    assert "1 difference" in human.stdout


def test_a_deleted_snapshot_row_is_missing(loaded: str) -> None:
    execute(
        loaded,
        "DELETE FROM customer.fct_customer_business_monthly_status"
        " WHERE snapshot_month = '2024-12-31' AND company_id = 'C1'",
    )
    code, data = run_check(loaded)
    assert code == 1
    assert data["counts"] == {"customer.fct_customer_business_monthly_status": {"missing": 1}}
    assert data["sample"][0]["stored"] is None and data["sample"][0]["expected"]["plan_count"] == 1


def test_a_version_with_a_wrong_flag_is_found_both_ways(loaded: str) -> None:
    # C2 is strategic in 2025 (top 10 of B1); flip it on its versions without touching the
    # snapshots: the history check sees the version, the snapshot check the rows that
    # disagree with the (now wrong) history
    execute(
        loaded,
        "UPDATE customer.customer_plan_contract SET is_strategic = false"
        " WHERE company_id = 'C2' AND plan_code = 'P1' AND status_year = 2025",
    )
    code, data = run_check(loaded)
    assert code == 1
    counts = data["counts"]["customer.customer_plan_contract"]
    assert counts == {"missing": 1, "unexpected": 1}
    history = [d for d in data["sample"] if d["table"] == "customer.customer_plan_contract"]
    assert {d["kind"]: d["key"]["plan_code"] for d in history} == {
        "missing": "P1",
        "unexpected": "P1",
    }
    stored = next(d["stored"] for d in history if d["kind"] == "unexpected")
    assert stored["is_strategic"] is False and stored["status_year"] == 2025


def test_a_hand_edited_decision_is_found(loaded: str) -> None:
    execute(
        loaded,
        "UPDATE customer.annual_company_status SET is_strategic = NOT is_strategic"
        " WHERE status_year = 2025 AND company_id = 'C3'",
    )
    code, data = run_check(loaded, "--from", "2025-01", "--to", "2025-02")
    assert code == 1
    assert data["counts"]["customer.annual_company_status"] == {"missing": 1, "unexpected": 1}


def test_the_check_writes_nothing(loaded: str) -> None:
    execute(loaded, "UPDATE customer.customer_plan_contract SET is_existing = NOT is_existing")
    before = dump(loaded)
    with psycopg.connect(loaded) as conn:
        result = check(conn, date(2024, 11, 1), date(2025, 2, 1))
    assert not result.ok  # it found the flipped flags, and repaired nothing
    assert dump(loaded) == before


def test_a_load_commits_while_a_check_runs(loaded: str) -> None:
    """The check's transaction stays open (paused after the history) while an ETL load of
    a new month commits, its hook included, under a 5 s lock_timeout."""
    committed = threading.Event()
    errors: list[BaseException] = []

    def etl_load() -> None:
        try:
            with psycopg.connect(loaded) as conn:
                conn.execute("SET lock_timeout = '5s'")
                conn.execute(
                    'INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码",'
                    ' "组合代码", "期末资产规模", "机构代码")'
                    " VALUES ('2025-03-01', 'P1', 'C1', 'PL201', 'F1', 1, 'B1')"
                )
            committed.set()
        except BaseException as exc:  # reported below
            errors.append(exc)

    def pause(step: str) -> None:
        if step == "history":
            worker = threading.Thread(target=etl_load)
            worker.start()
            worker.join(30)

    with psycopg.connect(loaded) as conn:
        result = check(conn, date(2024, 11, 1), date(2025, 2, 1), on_step=pause)
    assert not errors and committed.is_set(), errors
    # the check read one snapshot, from before the load: what it saw was consistent
    assert result.ok, [d.as_dict() for d in result.sample]
    assert run_check(loaded)[0] == 0  # and so is the state after the load


def test_bad_input_is_one_line(loaded: str, rules_url: str) -> None:
    result = runner.invoke(
        app, ["check", "--database-url", loaded, "--from", "2025-02", "--to", "2024-11"]
    )
    assert result.exit_code == 1 and "Error: --from 2025-02 is after --to 2024-11" in result.output
    result = runner.invoke(app, ["check", "--database-url", loaded, "--from", "2025-13"])
    assert result.exit_code == 1 and result.output.count("Error:") == 1


def test_nothing_loaded_is_said(rules_url: str) -> None:
    result = runner.invoke(app, ["check", "--database-url", rules_url])
    assert result.exit_code == 1 and "nothing to check: no month is loaded" in result.output


def test_undecided_years_are_reported_and_a_rebuild_decides_them(loaded: str) -> None:
    """A database upgraded from before the decisions were data has versions and no
    decisions: check names every year missing; the next load decides its own year; a
    rebuild of the range decides the rest (the upgrade recipe in CHANGELOG.md)."""
    execute(loaded, "DELETE FROM customer.annual_reference")
    code, data = run_check(loaded)
    assert code == 1
    assert data["counts"]["customer.annual_reference"] == {"missing": 2}
    load(loaded, date(2025, 3, 1), rows_of(date(2025, 3, 1)))
    with psycopg.connect(loaded) as conn:
        decided = [y for (y,) in conn.execute("SELECT status_year FROM customer.annual_reference")]
    assert decided == [2025]
    with psycopg.connect(loaded) as conn:
        rebuild(conn, loaded, "annuity_performance", date(2024, 11, 1), date(2025, 3, 1))
    assert run_check(loaded)[0] == 0
