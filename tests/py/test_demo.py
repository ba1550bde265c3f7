"""The synthetic data generator (cmdm_admin.demo): determinism, the business it simulates,
and loading it into a database at the base schema."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from itertools import islice, pairwise

import psycopg
import pytest

from cmdm_admin import demo
from cmdm_admin.demo import (
    BAD_ROW_KINDS,
    BRANCHES,
    EVENT_COLUMNS,
    FACT_COLUMNS,
    PRODUCT_LINES,
    STRATEGIC_THRESHOLD,
    DemoMonth,
    DemoSpec,
)
from cmdm_admin.errors import CmdmError

SMALL = DemoSpec(companies=300, months=24, seed=11)
PAIRS = SMALL.companies * len(PRODUCT_LINES)  # (company, product line) pairs
YEARS = SMALL.months / 12

C = {name: i for i, name in enumerate(FACT_COLUMNS)}
PLAN, COMPANY, LINE, PORTFOLIO = C["计划代码"], C["company_id"], C["产品线代码"], C["组合代码"]
END, BEGIN, CONTRIBUTION = C["期末资产规模"], C["期初资产规模"], C["供款"]
LINE_CODES = {code for code, _, _ in PRODUCT_LINES}


@pytest.fixture(scope="module")
def run() -> list[DemoMonth]:
    return list(demo.iter_months(SMALL))


@pytest.fixture(scope="module")
def known() -> set[str]:
    return {cid for cid, _ in demo.customers(SMALL)}


def bad_kind(row: tuple, known: set[str]) -> str | None:
    if row[PLAN] is None:
        return "null_plan"
    if row[COMPANY] is None:
        return "null_company"
    if row[LINE] not in LINE_CODES:
        return "unknown_product_line"
    if row[COMPANY] not in known:
        return "unknown_company"
    return None


def good_facts(month: DemoMonth, known: set[str]) -> list[tuple]:
    return [row for row in month.facts if bad_kind(row, known) is None]


def plan_aum(month: DemoMonth, known: set[str]) -> dict[str, Decimal]:
    """AUM per plan of the month (good rows only)."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in good_facts(month, known):
        totals[row[PLAN]] += row[END]
    return totals


# --- determinism and the spec ----------------------------------------------------------


def test_same_spec_gives_the_same_data_and_another_seed_does_not() -> None:
    spec = DemoSpec(companies=120, months=6, seed=3)
    assert demo.fingerprint(spec) == demo.fingerprint(DemoSpec(companies=120, months=6, seed=3))
    assert demo.fingerprint(spec) != demo.fingerprint(DemoSpec(companies=120, months=6, seed=4))
    first = next(demo.iter_months(spec))
    again = next(demo.iter_months(spec))
    assert first == again


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"companies": 0}, "companies must be at least 1"),
        ({"companies": True}, "companies must be an integer"),
        ({"months": 0}, "months must be between 1 and 600"),
        ({"months": 601}, "months must be between 1 and 600"),
        ({"months": 1.5}, "months must be an integer"),
        ({"start": date(2024, 1, 15)}, "start must be the 1st of a month"),
        ({"start": datetime(2024, 1, 1)}, "start must be a date"),
        ({"start": "2024-01-01"}, "start must be a date"),
    ],
)
def test_spec_is_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(CmdmError, match=message):
        DemoSpec(**kwargs)


def test_months_are_the_firsts_in_order(run: list[DemoMonth]) -> None:
    assert [m.month for m in run] == [demo.add_months(SMALL.start, t) for t in range(24)]
    assert run[-1].month == date(2025, 12, 1)
    for month in run:
        assert all(len(row) == len(FACT_COLUMNS) and row[0] == month.month for row in month.facts)
        for event in month.awards + month.losses:
            assert len(event) == len(EVENT_COLUMNS)
            assert event[3] == month.month


def test_customers_are_every_company_from_the_start() -> None:
    rows = demo.customers(SMALL)
    assert [cid for cid, _ in rows] == [f"C{n:06d}" for n in range(1, 301)]
    assert all(name for _, name in rows)
    assert rows[0][0] == "C000001"


# --- the simulated business ------------------------------------------------------------


def test_companies_plans_and_portfolios(run: list[DemoMonth], known: set[str]) -> None:
    plans_of: dict[str, set[str]] = defaultdict(set)
    portfolios_of: dict[str, set[str]] = defaultdict(set)
    line_of: dict[str, set[str]] = defaultdict(set)
    for month in run:
        for row in good_facts(month, known):
            plans_of[row[COMPANY]].add(row[PLAN])
            portfolios_of[row[PLAN]].add(row[PORTFOLIO])
            line_of[row[PLAN]].add(row[LINE])
            assert row[C["业务类型"]] == dict((c, n) for c, n, _ in PRODUCT_LINES)[row[LINE]]
            assert re.fullmatch(rf"{row[PLAN]}0[1-3]", row[PORTFOLIO])
    assert all(1 <= len(plans) <= 4 for plans in plans_of.values())
    assert max(len(plans) for plans in plans_of.values()) == 4
    assert all(1 <= len(p) <= 3 for p in portfolios_of.values())
    assert {len(p) for p in portfolios_of.values()} == {1, 2, 3}
    assert all(len(lines) == 1 for lines in line_of.values())
    for company, plans in plans_of.items():
        assert all(re.fullmatch(rf"P{company[1:]}[A-D]", plan) for plan in plans)
    # Some companies are dormant at first and become customers later.
    first = {row[COMPANY] for row in good_facts(run[0], known)}
    assert 0.6 * len(known) < len(first) < 0.95 * len(known)
    assert len(set(plans_of) - first) >= 10


def test_branches_and_product_lines_are_all_used(run: list[DemoMonth], known: set[str]) -> None:
    facts = [row for month in run for row in good_facts(month, known)]
    branches = {(row[C["机构代码"]], row[C["机构名称"]]) for row in facts}
    assert 25 <= len(branches) <= 30
    assert branches <= {(code, name) for code, name, _ in BRANCHES}
    assert {row[LINE] for row in facts} == LINE_CODES


def test_suspended_plans_have_zero_rows_and_reactivate(
    run: list[DemoMonth], known: set[str]
) -> None:
    aum = [plan_aum(month, known) for month in run]
    suspended = {plan for month in aum for plan, total in month.items() if total == 0}
    reactivated = {
        plan
        for t, month in enumerate(aum)
        for plan, total in month.items()
        if total == 0 and any(later.get(plan, 0) > 0 for later in aum[t + 1 :])
    }
    assert len(suspended) >= 20
    assert len(reactivated) >= 10
    # About 1 % of the plans enter a suspension each month.
    entering = sum(
        1
        for before, now in pairwise(aum)
        for plan, total in now.items()
        if total == 0 and before.get(plan, 0) > 0
    )
    assert 0.004 < entering / sum(len(m) for m in aum[1:]) < 0.025


def test_one_portfolio_at_zero_while_the_others_are_positive(
    run: list[DemoMonth], known: set[str]
) -> None:
    mixed = set()
    for month in run:
        by_plan: dict[str, list[Decimal]] = defaultdict(list)
        for row in good_facts(month, known):
            by_plan[row[PLAN]].append(row[END])
        mixed |= {p for p, values in by_plan.items() if 0 in values and max(values) > 0}
    assert mixed


def test_plans_disappear_reappear_end_and_start(run: list[DemoMonth], known: set[str]) -> None:
    present = [set(plan_aum(month, known)) for month in run]
    gaps = {
        plan
        for t in range(1, len(present) - 1)
        for plan in present[t - 1] - present[t]
        if any(plan in later for later in present[t + 1 :])
    }
    ended = {plan for t in range(len(present) - 1) for plan in present[t]} - set().union(
        *present[-6:]
    )
    assert len(gaps) >= 5
    assert len(ended) >= 10
    new_by_month = [now - set().union(*present[:t]) for t, now in enumerate(present) if t]
    assert sum(1 for new in new_by_month if new) >= 0.8 * len(new_by_month)
    # New plans outpace ended ones.
    assert len(present[-1]) > 1.1 * len(present[0])
    assert len(run[-1].facts) > 1.1 * len(run[0].facts)


def test_aum_is_a_random_walk_with_a_few_strategic_companies(
    run: list[DemoMonth], known: set[str]
) -> None:
    plans = plan_aum(run[0], known)
    assert 1_000_000 < statistics.median(plans.values()) < 10_000_000
    previous: dict[str, Decimal] = {}
    carried = 0
    for month in run:
        for row in good_facts(month, known):
            assert all(row[i].as_tuple().exponent == -2 for i in (END, BEGIN, CONTRIBUTION))
            assert row[END] >= 0 and row[CONTRIBUTION] >= 0
            if row[PORTFOLIO] in previous:
                assert row[BEGIN] == previous[row[PORTFOLIO]]
                carried += 1
            previous[row[PORTFOLIO]] = row[END]
    assert carried > 10_000
    contributions = [row[CONTRIBUTION] for row in good_facts(run[5], known)]
    assert 0.3 < sum(1 for c in contributions if c > 0) / len(contributions) < 0.8


def test_strategic_companies_at_a_medium_scale() -> None:
    spec = DemoSpec(companies=3000, months=1)
    known = {cid for cid, _ in demo.customers(spec)}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in good_facts(next(demo.iter_months(spec)), known):
        totals[row[COMPANY]] += row[END]
    strategic = sum(1 for total in totals.values() if total >= STRATEGIC_THRESHOLD)
    assert 0.001 * spec.companies <= strategic <= 0.008 * spec.companies


def test_awards_and_losses(run: list[DemoMonth], known: set[str]) -> None:
    awards = [event for month in run for event in month.awards]
    losses = [event for month in run for event in month.losses]
    award_pairs = {(cid, line, day.year) for cid, line, _, day in awards}
    loss_pairs = {(cid, line, day.year) for cid, line, _, day in losses}
    assert 0.01 < len(award_pairs) / PAIRS / YEARS < 0.03
    assert 0.004 < len(loss_pairs) / PAIRS / YEARS < 0.018
    assert {day.month for _, _, _, day in awards} >= set(range(1, 13)) - {1, 12}

    rows_of: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
    for month in run:
        for row in good_facts(month, known):
            rows_of[row[PLAN]].append((month.month, row[COMPANY], row[LINE]))
    for cid, line, plan, _ in awards + losses:
        assert cid in known and line in LINE_CODES
        assert all((c, p) == (cid, line) for _, c, p in rows_of.get(plan, []))
    # An award is for a running plan or one appearing at or after the award month.
    new_plan_awards = 0
    for cid, _, plan, day in awards:
        months = [m for m, _, _ in rows_of.get(plan, [])]
        # (no rows at all: the plan opens after the last generated month)
        assert not months or day in months or months[0] > day, f"{cid} {plan} {day}"
        new_plan_awards += bool(months) and months[0] >= day
    assert new_plan_awards >= 5
    # Losses are mostly reported for plans that then end.
    last = {row[PLAN] for row in good_facts(run[-1], known)}
    assert sum(1 for _, _, plan, _ in losses if plan not in last) >= 0.3 * len(losses)


def test_bad_rows_of_each_kind_a_few_at_a_time(run: list[DemoMonth], known: set[str]) -> None:
    kinds: dict[str, int] = defaultdict(int)
    for month in run:
        bad = [kind for row in month.facts if (kind := bad_kind(row, known))]
        assert len(bad) <= 3
        for kind in bad:
            kinds[kind] += 1
    assert set(kinds) == set(BAD_ROW_KINDS)
    unknown = set(demo.unknown_company_ids(SMALL))
    assert unknown and not unknown & known
    seen = {row[COMPANY] for month in run for row in month.facts}
    assert seen & unknown
    assert (seen - {None}) - known <= unknown


def test_three_months_always_have_bad_rows() -> None:
    for seed in range(5):
        spec = DemoSpec(companies=3, months=3, seed=seed)
        known = {cid for cid, _ in demo.customers(spec)}
        assert any(bad_kind(row, known) for m in demo.iter_months(spec) for row in m.facts)


# --- loading ---------------------------------------------------------------------------


def count(conn: psycopg.Connection, table: str, where: str = "") -> int:
    return conn.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]


def test_load_customers_and_months(migrated_url: str) -> None:
    spec = DemoSpec(companies=150, months=3, seed=5)
    months = list(demo.iter_months(spec))
    facts = '"business"."规模明细"'
    with psycopg.connect(migrated_url) as conn:
        assert demo.load_customers(conn, spec) == spec.companies
        conn.commit()
        assert demo.load_customers(conn, spec) == 0
        conn.commit()
        for month in months:
            assert demo.copy_month(conn, month) == len(month.facts)
            conn.commit()

        assert count(conn, 'customer."年金客户"') == spec.companies
        assert count(conn, facts) == sum(len(m.facts) for m in months)
        assert count(conn, 'customer."当年中标"') == sum(len(m.awards) for m in months)
        assert count(conn, 'customer."当年流失"') == sum(len(m.losses) for m in months)
        per_month = conn.execute(
            f'SELECT "月度", count(*) FROM {facts} GROUP BY 1 ORDER BY 1'
        ).fetchall()
        assert per_month == [(m.month, len(m.facts)) for m in months]
        bad = count(
            conn,
            facts,
            'WHERE "计划代码" IS NULL OR company_id IS NULL OR "产品线代码" NOT IN '
            '(SELECT "产品线代码" FROM mapping."产品线") '
            'OR company_id NOT IN (SELECT company_id FROM customer."年金客户")',
        )
        known = {cid for cid, _ in demo.customers(spec)}
        assert bad == sum(1 for m in months for row in m.facts if bad_kind(row, known)) > 0
        total = conn.execute(f'SELECT sum("期末资产规模") FROM {facts}').fetchone()[0]
        assert total == sum(row[END] for m in months for row in m.facts)

        # Reloading a month's events adds none; deleting a month removes exactly its facts.
        demo.copy_month(conn, DemoMonth(months[1].month, [], months[1].awards, months[1].losses))
        assert count(conn, 'customer."当年中标"') == sum(len(m.awards) for m in months)
        assert demo.delete_month(conn, date(2024, 2, 17)) == len(months[1].facts)
        conn.commit()
        remaining = conn.execute(f'SELECT DISTINCT "月度" FROM {facts} ORDER BY 1').fetchall()
        assert remaining == [(months[0].month,), (months[2].month,)]
        assert count(conn, facts) == len(months[0].facts) + len(months[2].facts)


def test_copy_month_leaves_the_transaction_to_the_caller(migrated_url: str) -> None:
    spec = DemoSpec(companies=20, months=1)
    with psycopg.connect(migrated_url) as conn:
        demo.load_customers(conn, spec)
        demo.copy_month(conn, next(islice(demo.iter_months(spec), 1)))
        conn.rollback()
        assert count(conn, '"business"."规模明细"') == 0
        assert count(conn, 'customer."年金客户"') == 0
