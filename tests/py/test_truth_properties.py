"""The three output tables against the independent oracle (tests/py/oracle.py, written from
DESIGN §4 alone), after every step of random load sequences, run as the ETL runs them.

Each step is one ETL transaction: a month's facts replaced (a load or a restatement), a
month deleted, awards or losses added or deleted. Its hooks run the way the ETL runs them:
- `trigger`: nothing but the load; the hook runs at COMMIT;
- `call`: `SET LOCAL cmdm.post_hooks = off`, the load, then
  `CALL customer.run_post_etl_hooks(domain, month)` for each month whose facts changed
  (events are not the ETL's fact load: their trigger stays on).
After every step, every column of customer.customer_plan_contract and of both snapshot
tables equals the oracle's rows, and `cmdm check`'s functions find no difference.

The generators aim at the edges: AUMs at, just below and just above the threshold (and
company totals that reach it only together), more companies in a branch than the top N,
ties at place N, NULL branches, companies in several branches, zero and NULL AUM, the first
loaded month of a year with and without an earlier month, January and December
restatements, plans that stop while their siblings go on, events reported in later
months, deletes of whole months.

Depth: HYPOTHESIS_PROFILE=deep runs 250 examples per test (1,000 in all); the default
profile keeps `make test` within minutes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import oracle
import psycopg
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from model import Rules
from test_sync_properties import variant_sql

from cmdm_admin.check import check

DOMAIN = "annuity_performance"
EXAMPLES = 250 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 12

COMPANIES = ["C1", "C2", "C3", "C4"]
KNOWN_LINES = {"PL201": "企年投资", "PL202": "企年受托"}
PLANS = ["P1", "P2"]
VALID_KEYS = [(c, p, pl) for c in COMPANIES for p in PLANS for pl in KNOWN_LINES]
INVALID_KEYS = [("C1", None, "PL201"), ("C2", "P1", "PL999"), ("CX", "P1", "PL201")]
BRANCHES = ["B1", "B1", "B2", None]
# 2023-11 .. 2025-02: two Decembers, two Januaries
MONTHS = [date(2023 + (10 + i) // 12, (10 + i) % 12 + 1, 1) for i in range(16)]

THRESHOLD = 1000
# at, below and above the threshold; halves that reach it only together; zero, negative, NULL
AUMS = [
    Decimal("0"),
    Decimal("-5"),
    None,
    Decimal("1"),
    Decimal("499.99"),
    Decimal("500"),
    Decimal("500.01"),
    Decimal("999.99"),
    Decimal("1000"),
    Decimal("1000.01"),
    Decimal("250"),
]

VARIANTS = {
    # threshold in the AUM range, a whitelist smaller than a branch (ties at place 2)
    "suspend-1000-top2": Rules(THRESHOLD, 2, "suspend"),
    "close-1000-top1": Rules(THRESHOLD, 1, "close"),
}

INSERT_FACT = """
INSERT INTO business."规模明细"
       ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
DELETE_MONTH = """DELETE FROM business."规模明细" WHERE "月度" >= %s AND "月度" < %s"""
EVENT_TABLES = {"award": 'customer."当年中标"', "loss": 'customer."当年流失"'}
RESET = """
TRUNCATE business."规模明细", customer."当年中标", customer."当年流失",
         customer.customer_plan_contract, customer.contract_key, cmdm.rejected_fact,
         customer.fct_customer_business_monthly_status, customer.fct_customer_plan_monthly_status,
         customer.annual_reference, customer.annual_company_status,
         customer.annual_product_line_status, customer.annual_plan_status, cmdm.hook_run
"""
STATUSES = (
    "is_strategic, is_existing, is_new, is_winning_this_year, is_churned_this_year,"
    " is_new_arrival, is_churned"
)
HISTORY_SQL = """
SELECT company_id, plan_code, product_line_code, product_line_name, valid_from, valid_to,
       contract_status, is_strategic, is_existing, status_year
  FROM customer.customer_plan_contract
"""
BUSINESS_SQL = f"""
SELECT snapshot_month, company_id, product_line_code, product_line_name, aum_balance,
       plan_count, {STATUSES}
  FROM customer.fct_customer_business_monthly_status
"""
PLAN_SQL = f"""
SELECT snapshot_month, company_id, plan_code, product_line_code, product_line_name,
       aum_balance, {STATUSES}
  FROM customer.fct_customer_plan_monthly_status
"""


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


# --- steps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: str  # load | delete | events | drop_events
    month: date | None = None
    facts: tuple[oracle.FactRow, ...] = ()
    source: str | None = None
    events: tuple[oracle.EventRow, ...] = ()

    def __repr__(self) -> str:
        if self.kind == "load":
            rows = "".join(
                f"\n    {f.company_id}/{f.plan_code}/{f.product_line_code} {f.branch_code} {f.aum}"
                for f in self.facts
            )
            return f"load {self.month:%Y-%m}{rows}"
        if self.kind == "delete":
            return f"delete {self.month:%Y-%m}"
        if self.kind == "events":
            rows = "".join(
                f"\n    {e.company_id}/{e.plan_code}/{e.product_line_code} {e.reported}"
                for e in self.events
            )
            return f"{self.source} add{rows}"
        return f"{self.source} delete those reported in {self.month:%Y-%m}"


@st.composite
def scenarios(draw: st.DrawFn) -> list[Step]:
    months = sorted(draw(st.lists(st.sampled_from(MONTHS), min_size=1, max_size=6, unique=True)))
    keys = draw(st.lists(st.sampled_from(VALID_KEYS), min_size=2, max_size=8, unique=True))
    if draw(st.booleans()):
        keys.append(draw(st.sampled_from(INVALID_KEYS)))
    # a company keeps a home branch, sometimes reports in another (several branches)
    home = {c: draw(st.sampled_from(BRANCHES)) for c in [*COMPANIES, "CX"]}

    def facts(month: date) -> tuple[oracle.FactRow, ...]:
        present = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
        rows = []
        for c, p, pl in present:
            for _ in range(draw(st.integers(1, 2))):  # portfolios
                branch = home[c] if draw(st.integers(0, 4)) else draw(st.sampled_from(BRANCHES))
                day = draw(st.sampled_from([1, 15, 28]))
                aum = draw(st.sampled_from(AUMS))
                rows.append(oracle.FactRow(month.replace(day=day), c, p, pl, branch, aum))
        return tuple(rows)

    def events() -> tuple[oracle.EventRow, ...]:
        out = []
        for _ in range(draw(st.integers(1, 3))):
            c = draw(st.sampled_from([*COMPANIES, None]))
            pl = draw(st.sampled_from([*KNOWN_LINES, "PL999"]))
            plan = draw(st.sampled_from([*PLANS, None]))
            month = draw(st.sampled_from(MONTHS))
            day = draw(st.sampled_from([1, 28])) if draw(st.integers(0, 9)) else None
            out.append(oracle.EventRow(c, plan, pl, month.replace(day=day) if day else None))
        return tuple(out)

    loaded: list[date] = []
    steps = []
    for month in draw(st.permutations(months)):  # every month once, in any order
        steps.append(Step("load", month, facts(month)))
        loaded.append(month)
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["load", "load", "delete", "events", "events", "drop_events"]))
        if kind == "load":  # a restatement, or a new month
            month = draw(st.sampled_from(MONTHS if draw(st.booleans()) else months))
            steps.append(Step("load", month, facts(month)))
        elif kind == "delete":
            steps.append(Step("delete", draw(st.sampled_from(months))))
        elif kind == "events":
            steps.append(
                Step("events", source=draw(st.sampled_from(list(EVENT_TABLES))), events=events())
            )
        else:
            steps.append(
                Step(
                    "drop_events",
                    draw(st.sampled_from(MONTHS)),
                    source=draw(st.sampled_from(list(EVENT_TABLES))),
                )
            )
    return steps


# --- the database ---------------------------------------------------------------------------


@dataclass
class Db:
    url: str
    rules: Rules


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant_db(request: pytest.FixtureRequest, admin_url: str) -> Iterator[Db]:
    """One migrated database per rules variant, its functions rendered from the variant."""
    from dbutil import scratch_database

    from cmdm_admin import migrate

    rules = VARIANTS[request.param]
    with scratch_database(admin_url) as url:
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(variant_sql(rules))
            with conn.cursor() as cur:
                cur.executemany(
                    'INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES (%s, %s)',
                    [(c, c) for c in COMPANIES],
                )
        yield Db(url, rules)


def apply(url: str, step: Step, mode: str, world: oracle.World) -> oracle.World:
    """Run one step as one ETL transaction; return the world after it."""
    with psycopg.connect(url) as conn:
        if step.kind in ("load", "delete"):
            if mode == "call":
                conn.execute("SET LOCAL cmdm.post_hooks = off")
            conn.execute(DELETE_MONTH, (step.month, next_month(step.month)))
            with conn.cursor() as cur:
                cur.executemany(
                    INSERT_FACT,
                    [
                        (
                            f.month,
                            f.plan_code,
                            f.company_id,
                            f.product_line_code,
                            "F",
                            f.aum,
                            f.branch_code,
                        )
                        for f in step.facts
                    ],
                )
            if mode == "call":
                conn.execute("CALL customer.run_post_etl_hooks(%s, %s)", (DOMAIN, step.month))
            kept = tuple(
                f for f in world.facts if not step.month <= f.month < next_month(step.month)
            )
            return replace(world, facts=kept + step.facts)
        table = EVENT_TABLES[step.source]
        field = "awards" if step.source == "award" else "losses"
        if step.kind == "events":
            with conn.cursor() as cur:
                cur.executemany(
                    f'INSERT INTO {table} (company_id, "计划代码", "产品线代码", "上报月份")'
                    " VALUES (%s, %s, %s, %s)",
                    [
                        (e.company_id, e.plan_code, e.product_line_code, e.reported)
                        for e in step.events
                    ],
                )
            return replace(world, **{field: getattr(world, field) + step.events})
        conn.execute(
            f'DELETE FROM {table} WHERE "上报月份" >= %s AND "上报月份" < %s',
            (step.month, next_month(step.month)),
        )
        kept = tuple(
            e
            for e in getattr(world, field)
            if e.reported is None or not step.month <= e.reported < next_month(step.month)
        )
        return replace(world, **{field: kept})


def rows(url: str, sql: str) -> set[tuple]:
    with psycopg.connect(url) as conn:
        return {tuple(r) for r in conn.execute(sql)}


def compare(what: str, expected: set[tuple], actual: set[tuple]) -> None:
    missing, extra = sorted(expected - actual, key=str), sorted(actual - expected, key=str)
    assert not missing and not extra, (
        f"{what}:\n  missing (oracle, not stored):\n    "
        + "\n    ".join(map(str, missing))
        + "\n  unexpected (stored, not the oracle's):\n    "
        + "\n    ".join(map(str, extra))
    )


def assert_matches(db: Db, world: oracle.World) -> None:
    compare(
        "customer.customer_plan_contract", oracle.contract_history(world), rows(db.url, HISTORY_SQL)
    )
    compare("business snapshot", oracle.business_snapshot(world), rows(db.url, BUSINESS_SQL))
    compare("plan snapshot", oracle.plan_snapshot(world), rows(db.url, PLAN_SQL))
    loaded = oracle.loaded_months(world)
    if loaded:
        with psycopg.connect(db.url) as conn:
            result = check(conn, loaded[0], loaded[-1], sample=5)
        assert result.ok, [d.as_dict() for d in result.sample]


@pytest.mark.parametrize("mode", ["trigger", "call"])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(steps=scenarios())
def test_outputs_equal_the_oracle_after_every_step(
    variant_db: Db, mode: str, steps: list[Step]
) -> None:
    with psycopg.connect(variant_db.url, autocommit=True) as conn:
        conn.execute(RESET)
    rules = variant_db.rules
    world = oracle.World(
        facts=(),
        awards=(),
        losses=(),
        companies=frozenset(COMPANIES),
        product_lines=dict(oracle_product_lines(variant_db.url)),
        strategic_threshold=Decimal(rules.strategic_threshold),
        whitelist_top_n=rules.whitelist_top_n,
        on_missing=rules.on_missing,
    )
    for number, step in enumerate(steps, start=1):
        note(f"step {number}: {step!r}")
        world = apply(variant_db.url, step, mode, world)
        assert_matches(variant_db, world)


def oracle_product_lines(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute('SELECT "产品线代码", "产品线" FROM mapping."产品线"').fetchall()
