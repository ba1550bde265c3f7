"""Bad input that was accepted or lost a month (issue 18, finding 6), loaded as an ETL
loads: one transaction, the hooks at COMMIT.

- A plan code '' or ' ' (a blank key part) is no contract key: its rows are rejected as
  `blank_key`, like a NULL key part, and counted in the hook log.
- A sum of AUM beyond what numeric(20, 2) holds (the snapshot tables' aum_balance) made the
  whole month's COMMIT fail in the snapshot step. Now the rows of the (company, product
  line) whose plan or total does not fit are rejected as `amount_overflow`, that pair is
  left out of the month's snapshots, and the rest of the month commits.
`cmdm check` agrees with what is stored in both cases.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import psycopg
from typer.testing import CliRunner

from cmdm_admin.cli import app

runner = CliRunner()
MONTH = date(2025, 3, 1)
MONTH_END = date(2025, 3, 31)
INSERT_SQL = """
INSERT INTO business."规模明细"
       ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES (%s, %s, %s, %s, %s, %s, 'B1')
"""
COMPANIES_SQL = """
INSERT INTO customer."年金客户" (company_id, "客户名称") SELECT c, c FROM unnest(%s::text[]) c
ON CONFLICT DO NOTHING
"""
#: Just below what numeric(20, 2) holds: 10^18 - 0.01.
LARGEST = Decimal("999999999999999999.99")
HALF = Decimal("600000000000000000.00")


def load(url: str, rows: list[tuple]) -> None:
    """(plan, company, product line, portfolio, AUM) rows of MONTH, committed (hooks on)."""
    with psycopg.connect(url) as conn:
        conn.execute(COMPANIES_SQL, (sorted({r[1] for r in rows}),))
        with conn.cursor() as cur:
            cur.executemany(INSERT_SQL, [(MONTH, *r) for r in rows])


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def check_code(url: str) -> int:
    result = runner.invoke(app, ["check", "--database-url", url, "--json"])
    json.loads(result.stdout)
    return result.exit_code


def test_blank_plan_codes_are_rejected_as_blank_keys(rules_url: str) -> None:
    load(
        rules_url,
        [
            ("P1", "C1", "PL201", "F1", Decimal(100)),
            ("", "C1", "PL201", "F1", Decimal(200)),
            (" ", "C1", "PL201", "F1", Decimal(300)),
            ("  ", "C2", "PL202", "F1", Decimal(400)),
        ],
    )
    assert rows(
        rules_url,
        "SELECT company_id, plan_code FROM customer.customer_plan_contract ORDER BY 1, 2",
    ) == [("C1", "P1")]
    assert rows(
        rules_url,
        "SELECT reason, plan_code, aum FROM cmdm.rejected_fact ORDER BY aum",
    ) == [
        ("blank_key", "", Decimal(200)),
        ("blank_key", " ", Decimal(300)),
        ("blank_key", "  ", Decimal(400)),
    ]
    assert rows(
        rules_url,
        "SELECT rejects, counts->>'rejected_blank_key' FROM cmdm.hook_run"
        " WHERE step = 'contract_sync'",
    ) == [(3, "3")]
    assert rows(
        rules_url,
        "SELECT company_id, plan_count, aum_balance"
        " FROM customer.fct_customer_business_monthly_status",
    ) == [("C1", 1, Decimal(100))]
    assert check_code(rules_url) == 0


def test_an_amount_too_large_to_store_rejects_its_pair_and_keeps_the_month(
    rules_url: str,
) -> None:
    load(
        rules_url,
        [
            # a plan whose two portfolios each fit, and their sum does not
            ("P1", "C1", "PL201", "F1", HALF),
            ("P1", "C1", "PL201", "F2", HALF),
            ("P2", "C1", "PL201", "F1", Decimal(5)),  # same pair: left out with it
            # two plans that each fit, and whose pair total does not
            ("P1", "C2", "PL202", "F1", HALF),
            ("P2", "C2", "PL202", "F1", HALF),
            # the largest amount that fits, and ordinary rows: kept
            ("P1", "C3", "PL201", "F1", LARGEST),
            ("P1", "C1", "PL202", "F1", Decimal(7)),
            ("P1", "C4", "PL203", "F1", Decimal(9)),
        ],
    )
    assert rows(
        rules_url,
        "SELECT company_id, product_line_code, aum_balance"
        " FROM customer.fct_customer_business_monthly_status ORDER BY 1, 2",
    ) == [("C1", "PL202", Decimal(7)), ("C3", "PL201", LARGEST), ("C4", "PL203", Decimal(9))]
    assert rows(
        rules_url,
        "SELECT company_id, plan_code, product_line_code"
        " FROM customer.fct_customer_plan_monthly_status ORDER BY 1, 2, 3",
    ) == [("C1", "P1", "PL202"), ("C3", "P1", "PL201"), ("C4", "P1", "PL203")]
    assert rows(
        rules_url,
        "SELECT period, reason, company_id, plan_code, product_line_code, portfolio_code"
        " FROM cmdm.rejected_fact ORDER BY 3, 4, 5, 6",
    ) == [
        (MONTH_END, "amount_overflow", "C1", "P1", "PL201", "F1"),
        (MONTH_END, "amount_overflow", "C1", "P1", "PL201", "F2"),
        (MONTH_END, "amount_overflow", "C1", "P2", "PL201", "F1"),
        (MONTH_END, "amount_overflow", "C2", "P1", "PL202", "F1"),
        (MONTH_END, "amount_overflow", "C2", "P2", "PL202", "F1"),
    ]
    assert rows(
        rules_url,
        "SELECT step, rejects FROM cmdm.hook_run ORDER BY hook_run_id",
    ) == [("contract_sync", 0), ("snapshot_refresh", 5)]
    # the contract history does not store amounts: it has every key
    assert rows(rules_url, "SELECT count(*) FROM customer.customer_plan_contract") == [(7,)]
    assert check_code(rules_url) == 0

    # the pair fixed (restated): its rows are taken again, and the rejects go
    with psycopg.connect(rules_url) as conn:
        conn.execute(
            """UPDATE business."规模明细" SET "期末资产规模" = 1
                WHERE "期末资产规模" = %s""",
            (HALF,),
        )
    assert rows(rules_url, "SELECT count(*) FROM cmdm.rejected_fact") == [(0,)]
    assert rows(
        rules_url, "SELECT count(*) FROM customer.fct_customer_business_monthly_status"
    ) == [(5,)]
    assert check_code(rules_url) == 0
