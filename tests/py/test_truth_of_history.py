"""The findings of "Truth of history" (issue 15), each as it was found: facts loaded through
the ETL path (the trigger at COMMIT, or post_hooks = off + CALL), then the output tables
read as an analyst reads them. Expected values are worked out from DESIGN §4's text.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest
from model import Rules
from test_sync_properties import variant_sql

from cmdm_admin.explain import explain
from cmdm_admin.rebuild import rebuild

INSERT_SQL = """
INSERT INTO business."规模明细"
       ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES (%s, %s, %s, %s, 'F1', %s, %s)
"""
COMPANIES_SQL = """
INSERT INTO customer."年金客户" (company_id, "客户名称") SELECT c, c FROM unnest(%s::text[]) c
ON CONFLICT DO NOTHING
"""
DOMAIN = "annuity_performance"


def load(url: str, month: date, rows: list[tuple], mode: str = "trigger") -> None:
    """One month's facts (plan, company, product line, AUM, branch) in one transaction, the
    hook run as the ETL runs it: at COMMIT by the trigger, or by CALL with the trigger off."""
    with psycopg.connect(url) as conn:
        conn.execute(COMPANIES_SQL, ([r[1] for r in rows],))
        if mode == "call":
            conn.execute("SET LOCAL cmdm.post_hooks = off")
        with conn.cursor() as cur:
            cur.executemany(INSERT_SQL, [(month, *r) for r in rows])
        if mode == "call":
            conn.execute("CALL customer.run_post_etl_hooks(%s, %s)", (DOMAIN, month))


def flags(url: str, sql: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute(sql).fetchall())


STRATEGIC_ROWS = [
    *[(f"P{i:02}", f"C{i:02}", "PL201", Decimal(600_000_000 + i), "B1") for i in range(1, 11)],
    ("PA1", "CA", "PL201", Decimal(300_000_000), "B1"),
    ("PA2", "CA", "PL202", Decimal(200_000_000), "B1"),
    ("PB1", "CB", "PL201", Decimal("499999999.99"), "B1"),
    ("PC1", "CC", "PL201", Decimal(1000), "B1"),
]
EXPECTED_STRATEGIC = {f"C{i:02}": True for i in range(1, 11)} | {
    "CA": True,
    "CB": False,
    "CC": False,
}


@pytest.mark.parametrize("mode", ["trigger", "call"])
def test_first_year_reference_month_is_counted_once(rules_url: str, mode: str) -> None:
    """Finding 1: the first loaded month of the first year is its own reference month. CB
    (12th of B1, 499,999,999.99) is not strategic; it was, as its SUM was counted twice."""
    load(rules_url, date(2025, 1, 1), STRATEGIC_ROWS, mode)
    for table in (
        "customer.customer_plan_contract",
        "customer.fct_customer_business_monthly_status",
        "customer.fct_customer_plan_monthly_status",
    ):
        got = flags(rules_url, f"SELECT company_id, bool_or(is_strategic) FROM {table} GROUP BY 1")
        assert got == EXPECTED_STRATEGIC, table


def test_explain_reads_the_decision(rules_url: str) -> None:
    """Finding 2: explain shows the value the sync decided and the evidence it decided
    from; its rank, sum and verdict agree with the table."""
    load(rules_url, date(2025, 1, 1), STRATEGIC_ROWS)
    with psycopg.connect(rules_url) as conn:
        for company, expected in (("CB", False), ("CA", True), ("C10", True), ("CC", False)):
            shown = explain(conn, company, date(2025, 1, 1))
            for line in shown.product_lines:
                for status in line.statuses:
                    if status.status == "is_strategic":
                        assert (status.value, status.stored) == (expected, expected), company


def test_plan_rows_speak_for_the_plan(rules_url: str) -> None:
    """Finding 3, the examples of DESIGN §4: P4 stops while P1 goes on (plan row churned,
    business row not); P3 appears in a pair that already had facts (plan row a new arrival,
    business row not)."""
    aum = Decimal(1000)
    load(
        rules_url,
        date(2025, 1, 1),
        [("P1", "C1", "PL201", aum, "B1"), ("P4", "C1", "PL201", aum, "B1")],
    )
    load(rules_url, date(2025, 2, 1), [("P1", "C1", "PL201", aum, "B1")])
    load(
        rules_url,
        date(2025, 3, 1),
        [("P1", "C1", "PL201", aum, "B1"), ("P3", "C1", "PL201", aum, "B1")],
    )
    plan = {
        (r[0], r[1]): r[2:]
        for r in psycopg.connect(rules_url).execute(
            "SELECT snapshot_month, plan_code, is_churned, is_new_arrival"
            " FROM customer.fct_customer_plan_monthly_status"
        )
    }
    business = {
        r[0]: r[1:]
        for r in psycopg.connect(rules_url).execute(
            "SELECT snapshot_month, is_churned, is_new_arrival"
            " FROM customer.fct_customer_business_monthly_status"
        )
    }
    feb, mar = date(2025, 2, 28), date(2025, 3, 31)
    assert plan[(feb, "P4")] == (True, False)
    assert plan[(feb, "P1")] == (False, False)
    assert business[feb] == (False, False)
    assert plan[(mar, "P3")] == (False, True)
    assert business[mar] == (False, False)
    assert plan[(date(2025, 1, 31), "P4")] == (False, True)
    assert business[date(2025, 1, 31)] == (False, True)


def test_rebuild_redecides_the_years_it_touches(rules_url: str) -> None:
    """Finding 4: after the strategic threshold is lowered, a rebuild of 2025-01..2025-03
    re-decides 2025 (whose reference month, 2024-12, lies outside the range)."""
    row = [("P1", "C1", "PL201", Decimal(400_000_000), "B1")]
    small = [(f"Q{i}", f"D{i:02}", "PL201", Decimal(1000 + i), "B1") for i in range(10)]
    for month in (date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)):
        load(rules_url, month, row + small)
    strategic = (
        "SELECT status_year, bool_or(is_strategic) FROM customer.customer_plan_contract"
        " WHERE company_id = 'C1' GROUP BY 1"
    )
    before = flags(rules_url, strategic.replace("'C1'", "'D05'"))
    assert before == {2024: True, 2025: True}  # top 10 of the 11 companies of B1
    # The whitelist shrinks to the top 1 of each branch: only C1 (400,000,000) stays.
    with psycopg.connect(rules_url, autocommit=True) as conn:
        conn.execute(variant_sql(Rules(500_000_000, 1, "suspend")))
        rebuild(conn, rules_url, DOMAIN, date(2025, 1, 1), date(2025, 3, 1))
    got = flags(
        rules_url,
        "SELECT company_id, bool_or(is_strategic) FROM customer.customer_plan_contract"
        " WHERE status_year = 2025 GROUP BY 1",
    )
    assert got["C1"] is True and not any(v for c, v in got.items() if c != "C1")
