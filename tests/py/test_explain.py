"""`cmdm explain` (cmdm_admin.explain): every status of a customer and month, the truth of
each node of its rule, and the evidence rows.

A small history is synced and refreshed month by month like the post-ETL hook does; then,
for every company and loaded month, the root of each rule as explain evaluates it must be
the value the snapshot stored. Hand-checked cases pin node values and evidence, and a
change made after the refresh must show up as a stale stored value.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.explain import ExplainError, Explanation, StatusExplanation, explain

runner = CliRunner()

MONTHS = [date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)]
DEC, JAN, FEB, MAR, APR = MONTHS
COMPANIES = [("C1", "甲公司"), ("C2", "乙公司"), ("C3", "丙公司")]  # C3 never has facts

# (month, plan, company, product line, portfolio, AUM, branch)
FACTS = (
    # C1 P1 PL201: every month, two portfolios
    *((m, "P1", "C1", "PL201", "F1", 60, "B1") for m in MONTHS),
    *((m, "P1", "C1", "PL201", "F2", 40, "B1") for m in MONTHS),
    # C1 P2 PL202: Dec .. Feb, then gone (a disappearance in March, suspended in April)
    *((m, "P2", "C1", "PL202", "F1", 30, "B1") for m in (DEC, JAN, FEB)),
    # C1 P3 PL201: a new plan in March, in a product line seen before
    (MAR, "P3", "C1", "PL201", "F1", 5, "B1"),
    (APR, "P3", "C1", "PL201", "F1", 5, "B1"),
    # a rejected row of C1 in March (no plan): shown, never counted
    (MAR, None, "C1", "PL201", "F9", 999, "B1"),
    # C2 P9 PL203: first appears in February, zero AUM in March
    (FEB, "P9", "C2", "PL203", "F1", 70, "B2"),
    (MAR, "P9", "C2", "PL203", "F1", 0, "B2"),
    (APR, "P9", "C2", "PL203", "F1", 80, "B2"),
    # C2 P8 PL201: only in December (gone from January on)
    (DEC, "P8", "C2", "PL201", "F1", 10, "B2"),
)
AWARDS = (
    ("C1", "P1", "PL201", date(2024, 2, 10)),
    ("C1", "P2", "PL202", date(2024, 11, 5)),  # after every loaded month
    ("C2", "P9", "PL203", date(2024, 3, 31)),  # the March month-end
    ("C2", "P8", "PL201", date(2023, 12, 20)),  # last year, seen from 2024
)
LOSSES = (("C1", "P2", "PL202", date(2024, 3, 15)),)


def load(url: str) -> None:
    # Loaded with the hooks off: the test syncs and refreshes itself.
    with psycopg.connect(url, options="-c cmdm.post_hooks=off") as conn:
        conn.cursor().executemany(
            'INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES (%s, %s)', COMPANIES
        )
        conn.cursor().executemany(
            'INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码",'
            ' "组合代码", "期末资产规模", "机构代码") VALUES (%s, %s, %s, %s, %s, %s, %s)',
            FACTS,
        )
        for table, rows in (("当年中标", AWARDS), ("当年流失", LOSSES)):
            conn.cursor().executemany(
                f'INSERT INTO customer."{table}" (company_id, "计划代码", "产品线代码", "上报月份")'
                " VALUES (%s, %s, %s, %s)",
                rows,
            )
        for month in MONTHS:
            conn.execute("SELECT customer.sync_contract_status(%s)", (month,))
        for month in MONTHS:
            conn.execute("SELECT customer.refresh_monthly_snapshot(%s)", (month,))


@pytest.fixture
def scenario(rules_url: str) -> str:
    load(rules_url)
    return rules_url


def run(url: str, company: str, month: date, plan: str | None = None) -> Explanation:
    with psycopg.connect(url) as conn:
        return explain(conn, company, month, plan)


def status(result: Explanation, line: str, name: str, plan: str | None = None) -> StatusExplanation:
    """The status as shown on the business row (or, with `plan`, on that plan's row)."""
    (found,) = [
        s
        for p in result.product_lines
        if p.product_line_code == line
        for s in p.statuses
        if s.status == name and s.key.get("plan_code") == plan
    ]
    return found


def nodes(s: StatusExplanation) -> dict[str, bool | None]:
    return {n.path: n.value for n in s.nodes}


def test_root_equals_stored_value_everywhere(scenario: str) -> None:
    """Every status of every company and loaded month: explain's value is the stored one."""
    checked = 0
    for company in ("C1", "C2"):
        for month in MONTHS:
            result = run(scenario, company, month)  # suspended versions cover every month
            assert result.refreshed and result.rules.origin == "deployed"
            assert not result.stale
            for line in result.product_lines:
                assert line.stored is not None
                for s in line.statuses:
                    assert s.stored is not None and s.value == s.stored, (company, month, s)
                    if not s.annual:
                        assert s.nodes[0].value == s.value
                    checked += 1
    assert checked > 40


def test_march_node_values_by_hand(scenario: str) -> None:
    c1, c2 = run(scenario, "C1", MAR), run(scenario, "C2", MAR)
    assert [p.product_line_code for p in c1.product_lines] == ["PL201", "PL202"]
    assert c1.previous_loaded_month == date(2024, 2, 29)
    assert c1.reference_month == date(2023, 12, 31)
    # P2 had facts in February and none in March: disappeared, and its SUM is 0
    churned = status(c1, "PL202", "is_churned")
    assert churned.value is True
    assert nodes(churned) == {"rule": True, "rule.any[0]": True, "rule.any[1]": True}
    assert churned.nodes[2].detail == "SUM = 0"
    # C2's PL203 is still there, with AUM 0: churned by the second condition only
    churned = status(c2, "PL203", "is_churned")
    assert nodes(churned) == {"rule": True, "rule.any[0]": False, "rule.any[1]": True}
    # C1's PL201: 100 + 5 (the rejected 999 does not count)
    churned = status(c1, "PL201", "is_churned")
    assert nodes(churned) == {"rule": False, "rule.any[0]": False, "rule.any[1]": False}
    assert churned.nodes[2].detail == "SUM = 105.00"
    # won in February and existing at the reference month: not new
    new = status(c1, "PL201", "is_new")
    assert nodes(new) == {
        "rule": False,
        "rule.all[0]": True,
        "rule.all[1]": False,
        "rule.all[1].not": True,
    }
    assert [n.depth for n in new.nodes] == [0, 1, 1, 2]
    # C2 won PL203 on the March month-end; no assets there in December 2023: new
    new = status(c2, "PL203", "is_new")
    assert nodes(new)["rule"] is True and nodes(new)["rule.all[1].not"] is False
    # the November award does not count in March; the March loss does
    assert status(c1, "PL202", "is_winning_this_year").value is False
    assert status(c1, "PL202", "is_churned_this_year").value is True
    # P3 is new, but PL201 was seen before: no new arrival for the pair, one for the plan
    assert status(c1, "PL201", "is_new_arrival").value is False
    assert status(c1, "PL201", "is_new_arrival", plan="P3").value is True
    assert status(c1, "PL201", "is_new_arrival", plan="P3").stored is True
    # P2 stopped in March while P1 goes on: the plan row is churned, the pair is not
    assert status(c1, "PL202", "is_churned", plan="P2").value is True
    assert status(c1, "PL201", "is_churned", plan="P1").value is False
    # annual statuses: stored value, the tree without per-node values
    existing = status(c1, "PL202", "is_existing")
    assert existing.annual and existing.value is True and nodes(existing) == {"rule": None}


def test_first_appearance_and_year_boundary(scenario: str) -> None:
    feb = run(scenario, "C2", FEB)
    arrival = status(feb, "PL203", "is_new_arrival")
    assert arrival.value is True and arrival.stored is True
    assert "nothing before" in arrival.nodes[0].detail
    assert status(run(scenario, "C2", MAR), "PL203", "is_new_arrival").value is False
    # C2 PL201 has no facts after December but its suspended version covers January
    jan = run(scenario, "C2", JAN)
    assert status(jan, "PL201", "is_churned").value is True
    # the December 2023 award is last year's as seen from January
    assert status(jan, "PL201", "is_winning_this_year").value is False
    dec = run(scenario, "C2", DEC)
    assert status(dec, "PL201", "is_winning_this_year").value is True
    assert dec.reference_month == date(2023, 12, 31)  # no loaded month before 2023


def test_evidence(scenario: str) -> None:
    result = run(scenario, "C1", MAR)
    ev = result.evidence
    awards = {(e["product_line_code"], e["reported"]): e["counted"] for e in ev["events"]}
    assert awards == {
        ("PL201", date(2024, 2, 10)): True,
        ("PL202", date(2024, 3, 15)): True,  # the loss
        ("PL202", date(2024, 11, 5)): False,  # November: not counted in March
    }
    assert {e["source"] for e in ev["events"]} == {"award", "loss"}
    facts = {(f["plan_code"], f["portfolio"]): (f["aum"], f["counted"]) for f in ev["facts"]}
    assert facts == {
        ("P1", "F1"): (Decimal("60.00"), True),
        ("P1", "F2"): (Decimal("40.00"), True),
        ("P3", "F1"): (Decimal("5.00"), True),
        (None, "F9"): (Decimal("999.00"), False),
    }
    previous = {(r["plan_code"], r["month"]) for r in ev["previous_month_keys"]}
    assert previous == {("P1", date(2024, 2, 29)), ("P2", date(2024, 2, 29))}
    first = {r["plan_code"]: (r["first_month"], r["first_this_month"]) for r in ev["first_seen"]}
    assert first == {
        "P1": (date(2023, 12, 31), False),
        "P2": (date(2023, 12, 31), False),
        "P3": (date(2024, 3, 31), True),
    }
    versions = {(v["plan_code"], v["contract_status"]) for v in ev["versions"]}
    assert versions == {("P1", "正常"), ("P2", "停缴"), ("P3", "正常")}
    assert {(r["plan_code"], r["aum"]) for r in ev["reference_facts"]} == {
        ("P1", Decimal("100.00")),
        ("P2", Decimal("30.00")),
    }
    (rank,) = ev["reference_ranks"]
    assert (rank["status"], rank["within_value"], rank["rank"], rank["in_top_n"]) == (
        "is_strategic",
        "B1",
        1,
        True,
    )
    # --plan: that plan's product line and plan rows only
    only = run(scenario, "C1", MAR, plan="P2")
    assert [p.product_line_code for p in only.product_lines] == ["PL202"]
    assert [r["plan_code"] for r in only.product_lines[0].plans] == ["P2"]
    assert {f["product_line_code"] for f in only.evidence["facts"]} <= {"PL202"}


def test_stale_snapshot_and_unrefreshed_month(scenario: str) -> None:
    """A change after the refresh: the evaluation sees it, the stored value does not."""
    with psycopg.connect(scenario, options="-c cmdm.post_hooks=off") as conn:
        conn.execute(
            'INSERT INTO customer."当年中标" (company_id, "计划代码", "产品线代码", "上报月份")'
            " VALUES ('C1', 'P2', 'PL202', '2024-03-01')"
        )
        conn.execute(
            "DELETE FROM customer.fct_customer_plan_monthly_status WHERE snapshot_month = %s",
            (date(2024, 4, 30),),
        )
        conn.execute(
            "DELETE FROM customer.fct_customer_business_monthly_status WHERE snapshot_month = %s",
            (date(2024, 4, 30),),
        )
    result = run(scenario, "C1", MAR)
    won = status(result, "PL202", "is_winning_this_year")
    assert (won.stored, won.value, won.matches) == (False, True, False)
    assert {s.status for s in result.stale} == {"is_winning_this_year"}
    april = run(scenario, "C1", APR)
    assert not april.refreshed
    won = status(april, "PL202", "is_winning_this_year")
    assert (won.stored, won.value, won.matches) == (None, True, None)
    with psycopg.connect(scenario) as conn:
        conn.execute("SELECT customer.refresh_monthly_snapshot(%s)", (MAR,))
    assert not run(scenario, "C1", MAR).stale


def test_bad_input(scenario: str) -> None:
    with pytest.raises(ExplainError, match="unknown company 'CX'"):
        run(scenario, "CX", MAR)
    with pytest.raises(ExplainError, match="2024-06 has no facts"):
        run(scenario, "C1", date(2024, 6, 1))
    with pytest.raises(ExplainError, match="'C3' has no contract covering 2024-03"):
        run(scenario, "C3", MAR)
    with pytest.raises(ExplainError, match="no contract of plan 'P9'"):
        run(scenario, "C1", MAR, plan="P9")


def test_checkout_rules_when_nothing_is_deployed(scenario: str) -> None:
    with psycopg.connect(scenario) as conn:
        conn.execute("DELETE FROM cmdm.rule_deployment")
    result = run(scenario, "C1", MAR)
    assert result.rules.origin == "checkout" and result.rules.sha256 is None
    assert not result.stale


def test_cli(scenario: str) -> None:
    base = ["explain", "--database-url", scenario]
    human = runner.invoke(app, [*base, "--company", "C1", "--month", "2024-03"])
    assert human.exit_code == 0, human.output
    for text in ("甲公司", "is_churned", "is_new_arrival", "is_strategic", "✔", "✘", "P3"):
        assert text in human.output
    assert "2024-11-05" in human.output  # the award not counted yet

    as_json = runner.invoke(app, [*base, "--company", "C2", "--month", "202403", "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["month"] == "2024-03" and data["snapshot_month"] == "2024-03-31"
    assert [p["product_line_code"] for p in data["product_lines"]] == ["PL201", "PL203"]
    line = data["product_lines"][1]
    churned = next(s for s in line["statuses"] if s["status"] == "is_churned")
    assert churned["stored"] is True and churned["value"] is True and churned["matches"] is True
    assert [n["value"] for n in churned["nodes"]] == [True, False, True]
    assert line["stored"]["aum_balance"] == "0.00"
    assert data["evidence"]["events"][0]["reported"] == "2024-03-31"

    for args, message in (
        (["--company", "CX", "--month", "2024-03"], "Error: unknown company 'CX'"),
        (["--company", "C1", "--month", "2024-06"], "Error: 2024-06 has no facts"),
        (["--company", "C3", "--month", "2024-03"], "Error: company 'C3' has no contract"),
        (["--company", "C1", "--month", "2024-13"], "Error: '2024-13' is not a month"),
    ):
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), result.output
