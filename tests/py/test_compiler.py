"""The rule compiler against PostgreSQL 15: every condition type, combinators nested freely,
hostile identifiers and values, determinism. Results are asserted, not only SQL text.

Each compiled expression is placed in a SELECT shaped like the templates' (see
sql/functions/customer.sync_contract_status.sql.j2): a fact scope's aggregates come from a
subquery over the facts of one month, grouped by the grain's key and aliased by the scope's
alias, its top_n columns from rank() in a LEFT JOIN; a monthly status reads a row alias with
the key and the presence booleans, month bounds as date literals and an alias holding the
row's annual statuses. Rules are the default rules/ texts with sections changed, dumped back
to YAML and loaded through the loader, so every rule here is one the loader accepts.

One database (at the alembic head) serves the module; each test works inside a transaction
that is rolled back. Compiled SQL always runs without bind parameters: psycopg then sends it
with the simple query protocol, which would run a second statement smuggled into it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from dbutil import with_database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmdm_admin import migrate
from cmdm_admin.compiler import (
    DECISION_ALIAS,
    AnnualScope,
    CompileError,
    ContractScope,
    FactScope,
    MonthlyScope,
    MonthRow,
    TopN,
    compile_rule,
    ident,
    literal,
    qualified,
    source_key_columns,
    text_literal,
)
from cmdm_admin.loader import RulesInvalid, load_rules_from_texts
from cmdm_admin.rules import GRAIN_KEYS, MAX_IDENTIFIER_BYTES, Rule, RuleSet, Source, Status

TESTS_DIR = Path(__file__).resolve().parent
RULES_DIR = TESTS_DIR.parents[1] / "rules"
DEFAULT_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in sorted(RULES_DIR.glob("*.yml"))}

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: (company_id, plan_code, product_line_code); plan_code is None on product-line rows.
Key = tuple[str, str | None, str]


# --- database -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_url(admin_url: str) -> Iterator[str]:
    """One database at the head revision for the whole module."""
    name = f"cmdm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(admin_url, name)
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def conn(module_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def conn_nonstandard(module_url: str) -> Iterator[psycopg.Connection]:
    """A session with standard_conforming_strings = off: backslashes escape in '...'."""
    with psycopg.connect(module_url, autocommit=True) as connection:
        connection.execute("SET standard_conforming_strings = off")
        yield connection


@pytest.fixture
def db(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The module's connection inside a transaction rolled back after the test."""
    with conn.transaction(force_rollback=True):
        yield conn


def add_facts(conn: psycopg.Connection, month: date, rows: Sequence[tuple]) -> None:
    """Rows of business.规模明细: (company_id, plan_code, product_line_code, 期末资产规模,
    业务类型, 机构代码), the last two optional."""
    conn.cursor().executemany(
        'INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码",'
        ' "期末资产规模", "业务类型", "机构代码", "组合代码")'
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [(month, *row, *(None,) * (6 - len(row)), f"G{index}") for index, row in enumerate(rows)],
    )


def add_events(conn: psycopg.Connection, table: str, rows: Sequence[tuple]) -> None:
    """Rows (company_id, plan_code, product_line_code, 上报月份) of customer.当年中标/当年流失."""
    conn.cursor().executemany(
        f'INSERT INTO customer."{table}" (company_id, "计划代码", "产品线代码", "上报月份")'
        " VALUES (%s, %s, %s, %s)",
        rows,
    )


# --- rules ----------------------------------------------------------------------------------


def load(edit: Callable[[dict[str, Any]], None]) -> RuleSet:
    """The default rules with `edit` applied to their sections ({'config': ..., 'sources':
    ..., 'contract': ..., 'statuses': ...}, changed in place), validated by the loader."""
    docs = {name: yaml.safe_load(text) for name, text in DEFAULT_TEXTS.items()}
    sections = {key: doc[key] for doc in docs.values() for key in doc if key != "schema_version"}
    edit(sections)
    return load_rules_from_texts(
        {
            name: yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
            for name, doc in docs.items()
        }
    )


def with_statuses(statuses: Mapping[str, dict], config: Mapping[str, Any] | None = None) -> RuleSet:
    """The default rules plus `statuses`, with config values changed."""

    def edit(sections: dict[str, Any]) -> None:
        sections["config"].update(config or {})
        sections["statuses"].update(statuses)

    return load(edit)


def status(grain: str, rule: Any, *, annual: bool = False) -> dict[str, Any]:
    return {"description": "a test status", "grain": grain, "annual": annual, "rule": rule}


def month_bounds(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return start, end


def sql_value(value: Any, type_: str = "text") -> str:
    if value is None:
        return f"NULL::{type_}"
    if isinstance(value, bool):
        return literal(value)
    return f"{text_literal(str(value))}::{type_}"


# --- harness: the compiled expression in the SELECT the templates build ----------------------


def aggregate(scope: FactScope, source: Source, month: date) -> str:
    """The aggregate row of `scope`'s grain over the facts of `month`, aliased by the scope's
    alias: key columns named by their logical names, the registered aggregate columns, and
    each top_n column (rank within the group, ties share a rank; NULL sums rank last)."""
    start, end = month_bounds(month)
    keys = GRAIN_KEYS[scope.grain]
    columns = [f"f.{ident(scope.key_columns[k])}" for k in keys]
    keyed = ", ".join(f"{c}::text AS {ident(k)}" for c, k in zip(columns, keys, strict=True))
    group = ", ".join(columns)
    date_field = f"f.{ident(source.date_field)}"
    facts = (
        f"{qualified(source.table)} f WHERE {date_field} BETWEEN DATE '{start}' AND DATE '{end}'"
    )
    aggregates = "".join(f", {sql} AS {ident(name)}" for name, sql in scope.columns.items())
    rows = f"SELECT {keyed}{aggregates} FROM {facts} GROUP BY {group}"
    tops, joins = "", ""
    for index, top in enumerate(scope.top_ns, start=1):
        alias = f"top_{index}"
        within = f"f.{ident(top.within)}"
        ranked = (
            f"SELECT {keyed}, rank() OVER (PARTITION BY {within} ORDER BY sum(f.{ident(top.field)})"
            f" DESC NULLS LAST) AS position FROM {facts} GROUP BY {group}, {within}"
        )
        names = ", ".join(f"ranked.{ident(k)}" for k in keys)
        on = " AND ".join(f"{alias}.{ident(k)} = a.{ident(k)}" for k in keys)
        joins += (
            f" LEFT JOIN (SELECT {names}, bool_or(ranked.position <= {top.n}) AS hit"
            f" FROM ({ranked}) ranked GROUP BY {names}) {alias} ON {on}"
        )
        tops += f", coalesce({alias}.hit, false) AS {ident(top.column)}"
    return f"(SELECT a.*{tops} FROM ({rows}) a{joins}) {scope.alias}"


def join_aggregates(scopes: Sequence[FactScope], source: Source, month: date, row: str) -> str:
    joins = ""
    for scope in scopes:
        on = " AND ".join(
            f"{scope.alias}.{ident(k)} = {row}.{ident(k)}" for k in GRAIN_KEYS[scope.grain]
        )
        joins += f" LEFT JOIN {aggregate(scope, source, month)} ON {on}"
    return joins


def run(
    conn: psycopg.Connection, exprs: Mapping[str, str], row: str, relation: str
) -> dict[str, set[Key]]:
    """name -> the keys whose expression is true; every expression must be true or false."""
    keys = f"{row}.company_id, {row}.plan_code, {row}.product_line_code"
    sql = f"SELECT {keys}, {', '.join(exprs.values())} FROM {relation}"
    result: dict[str, set[Key]] = {name: set() for name in exprs}
    for company, plan, product_line, *hits in conn.execute(sql).fetchall():
        for name, hit in zip(exprs, hits, strict=True):
            assert isinstance(hit, bool), f"{name} is {hit!r} for {company, plan, product_line}"
            if hit:
                result[name].add((company, plan, product_line))
    return result


def values(rows: Sequence[Sequence[str]]) -> str:
    """A VALUES list of rows of SQL expressions."""
    return "VALUES " + ", ".join("(" + ", ".join(row) + ")" for row in rows)


def keys_relation(keys: Sequence[Key]) -> str:
    rows = [[sql_value(v) for v in key] for key in keys]
    return f"({values(rows)}) k (company_id, plan_code, product_line_code)"


def evaluate_annual(
    conn: psycopg.Connection,
    ruleset: RuleSet,
    names: Sequence[str],
    keys: Sequence[Key],
    month: date,
) -> dict[str, set[Key]]:
    """The annual statuses `names` of contract keys `keys`, at reference month `month`."""
    scope = AnnualScope(ruleset, source_key_columns(ruleset.facts_source))
    exprs = {
        n: compile_rule(ruleset.statuses[n].rule, scope, ruleset.statuses[n].decided_grain)
        for n in names
    }
    # A coarser status is read from its decided row (a_<grain>): here, every annual status
    # of that grain evaluated over the same key's aggregates at that grain.
    decided = ""
    for grain in ("company", "product_line"):
        alias = DECISION_ALIAS.format(grain=grain)
        if not any(f"{alias}." in e for e in exprs.values()):
            continue
        columns = ", ".join(
            f"{compile_rule(st.rule, scope, grain)} AS {ident(n)}"
            for n, st in ruleset.annual_statuses.items()
            if st.decided_grain == grain
        )
        decided += f" CROSS JOIN LATERAL (SELECT {columns}) {alias}"
    joins = join_aggregates(list(scope.grains.values()), ruleset.facts_source, month, "k")
    return run(conn, exprs, "k", keys_relation(keys) + joins + decided)


def evaluate_contract(
    conn: psycopg.Connection, ruleset: RuleSet, keys: Sequence[Key], month: date
) -> dict[str, set[Key]]:
    """Each contract status case's `when`, by its index, for contract keys `keys`."""
    facts = FactScope("plan", "m", source_key_columns(ruleset.facts_source))
    scope = ContractScope(ruleset, facts)
    cases = ruleset.contract.status.cases
    exprs = {str(i): compile_rule(case.when, scope, "plan") for i, case in enumerate(cases)}
    joins = join_aggregates([facts], ruleset.facts_source, month, "k")
    return run(conn, exprs, "k", keys_relation(keys) + joins)


@dataclass(frozen=True)
class Row:
    """A row of a monthly status evaluation: its key, presence, and annual statuses."""

    key: Key
    present: bool = True
    present_before: bool = True
    seen_before: bool = True
    annual: Mapping[str, bool | None] = field(default_factory=dict)


def monthly_scope(ruleset: RuleSet, month: date) -> MonthlyScope:
    start, end = month_bounds(month)
    row = MonthRow(
        alias="r",
        month_start=f"DATE '{start}'",
        month_end=f"DATE '{end}'",
        present="r.present",
        present_before="r.present_before",
        seen_before="r.seen_before",
        annual="a",
    )
    keys = source_key_columns(ruleset.facts_source)
    return MonthlyScope(ruleset, row, {g: FactScope(g, f"m_{g}", keys) for g in GRAIN_KEYS})


def evaluate_monthly(
    conn: psycopg.Connection,
    ruleset: RuleSet,
    rules: Mapping[str, tuple[Rule, str]],
    rows: Sequence[Row],
    month: date,
) -> dict[str, set[Key]]:
    """Each (rule, grain) of `rules` evaluated on `rows` as of `month`."""
    scope = monthly_scope(ruleset, month)
    exprs = {name: compile_rule(rule, scope, grain) for name, (rule, grain) in rules.items()}
    flags = ("present", "present_before", "seen_before")
    r_rows = [
        [*map(sql_value, row.key), *(literal(getattr(row, f)) for f in flags)] for row in rows
    ]
    annual = list(ruleset.annual_statuses)
    a_rows = [[*map(sql_value, (None, None, None)), *(sql_value(None, "boolean") for _ in annual)]]
    a_rows += [  # the first row types the columns and joins nothing
        [*map(sql_value, row.key), *(sql_value(row.annual.get(n), "boolean") for n in annual)]
        for row in rows
        if row.annual
    ]
    key_names = "company_id, plan_code, product_line_code"
    a_names = "".join(f", {ident(n)}" for n in annual)
    relation = (
        f"({values(r_rows)}) r ({key_names}, {', '.join(flags)})"
        f" LEFT JOIN ({values(a_rows)}) a ({key_names}{a_names})"
        " ON a.company_id = r.company_id AND a.plan_code IS NOT DISTINCT FROM r.plan_code"
        " AND a.product_line_code = r.product_line_code"
    )
    relation += join_aggregates(list(scope.facts.values()), ruleset.facts_source, month, "r")
    return run(conn, exprs, "r", relation)


def statuses_of(ruleset: RuleSet, names: Sequence[str]) -> dict[str, tuple[Rule, str]]:
    # the rows below are (company, product line) rows: an unpinned status is evaluated there
    return {
        n: (ruleset.statuses[n].rule, ruleset.statuses[n].grain_at("product_line")) for n in names
    }


# --- monthly statuses: one data set, every condition type ------------------------------------

MARCH = date(2024, 3, 1)
R1, R2, R3 = ("C1", None, "PL201"), ("C2", None, "PL201"), ("C3", None, "PL202")
R4, R5, R6 = ("C4", None, "PL202"), ("C5", None, "PL203"), ("C6", None, "PL201")
MONTH_ROWS = (
    Row(R1, annual={"is_existing": True, "is_strategic": False}),
    Row(R2, present_before=False, annual={"is_existing": False}),  # came back
    Row(R3, present=False),  # disappeared; no annual statuses at all
    Row(R4, present_before=False, seen_before=False, annual={"is_existing": True}),  # new
    Row(R5, annual={"is_existing": None}),  # an annual status read as NULL
    Row(R6, present_before=False),
)
MONTH_FACTS = (
    ("C1", "P1", "PL201", 100, "企年受托"),
    ("C2", "P2", "PL201", 0, "企年投资"),
    ("C4", "P4a", "PL202", 350, None),  # 600 at product-line grain, neither plan above 500
    ("C4", "P4b", "PL202", 250, None),
    ("C5", "P5", "PL203", -5, "企年受托"),
    ("C6", "P6", "PL201", None, "企年投资"),  # a NULL measure sums to 0
)
MONTH_AWARDS = (
    ("C1", "P1", "PL201", date(2024, 2, 15)),
    ("C2", "P2", "PL201", date(2023, 12, 31)),  # last year
    ("C3", "P3", "PL202", date(2024, 3, 31)),  # the snapshot's month end
    ("C4", "P4a", "PL202", date(2024, 4, 1)),  # after the snapshot month
    ("C5", "P5", "PL201", date(2024, 1, 1)),  # another product line
)
MONTH_LOSSES = (
    ("C1", "P1", "PL201", None),  # undated
    ("C2", "P2", "PL201", date(2024, 1, 31)),  # before a 2-month window (Feb..Mar)
    ("C3", "P3", "PL202", date(2024, 2, 1)),
    ("C5", "P5", "PL203", date(2024, 3, 15)),
)

#: Leaf conditions with the rows (R1..R6) where each holds: 'T'/'F' per row.
LEAVES: dict[str, tuple[dict[str, Any], str]] = {
    "win": ({"exists_in_year": {"source": "award"}}, "TFTFFF"),
    "loss2": ({"exists_in_window": {"source": "loss", "months": 2}}, "FFTFTF"),
    "eq": ({"field_equals": {"field": "业务类型", "value": "企年受托"}}, "TFFFTF"),
    "big": (
        {
            "field_compare": {
                "field": "期末资产规模",
                "op": "gt",
                "value": {"config": "strategic_threshold"},
            }
        },
        "FFFTFF",
    ),
    "le0": ({"field_compare": {"field": "期末资产规模", "op": "le", "value": 0}}, "FTTFTT"),
    "ne0": ({"field_compare": {"field": "期末资产规模", "op": "ne", "value": 0}}, "TFFTTF"),
    "gone": ({"disappeared": {}}, "FFTFFF"),
    "gone_facts": ({"disappeared": {"source": "performance"}}, "FFTFFF"),
    "first": ({"first_appearance": None}, "FFFTFF"),
    "existing": ({"status": "is_existing"}, "TFFTFF"),  # annual: read from the annual row
    "winning": ({"status": "is_winning_this_year"}, "TFTFFF"),  # monthly: inlined
}
ROW_KEYS = tuple(row.key for row in MONTH_ROWS)
MONTH_CONFIG = {"strategic_threshold": 500}


def holds(truth: str) -> set[Key]:
    return {key for key, flag in zip(ROW_KEYS, truth, strict=True) if flag == "T"}


def month_data(conn: psycopg.Connection) -> None:
    add_facts(conn, MARCH, MONTH_FACTS)
    add_events(conn, "当年中标", MONTH_AWARDS)
    add_events(conn, "当年流失", MONTH_LOSSES)


def test_every_monthly_condition_selects_its_rows(db: psycopg.Connection) -> None:
    month_data(db)
    ruleset = with_statuses(
        {f"leaf_{name}": status("product_line", rule) for name, (rule, _) in LEAVES.items()},
        MONTH_CONFIG,
    )
    result = evaluate_monthly(
        db, ruleset, statuses_of(ruleset, [f"leaf_{n}" for n in LEAVES]), MONTH_ROWS, MARCH
    )
    assert result == {f"leaf_{name}": holds(truth) for name, (_, truth) in LEAVES.items()}


def test_default_monthly_statuses(db: psycopg.Connection) -> None:
    """is_new reads a monthly status (inlined) and an annual one (from the annual row)."""
    month_data(db)
    ruleset = with_statuses({}, MONTH_CONFIG)
    result = evaluate_monthly(
        db, ruleset, statuses_of(ruleset, list(ruleset.monthly_statuses)), MONTH_ROWS, MARCH
    )
    assert result == {
        "is_winning_this_year": {R1, R3},
        "is_churned_this_year": {R2, R3, R5},  # R1's loss is undated
        "is_new": {R3},  # won, and no annual is_existing row
        "is_new_arrival": {R4},
        "is_churned": {R2, R3, R5, R6},  # gone, or a sum <= 0 (R6: only a NULL measure)
    }


def test_monthly_status_matches_and_aggregates_at_its_grain(db: psycopg.Connection) -> None:
    """Plan-grain statuses: events match on the plan (or on `match`), facts aggregate per
    plan, and a status reads another monthly status of its grain (inlined)."""
    month_data(db)
    ruleset = with_statuses(
        {
            "plan_won": status("plan", {"exists_in_year": {"source": "award"}}),
            "company_won": status(
                "plan", {"exists_in_year": {"source": "award", "match": ["company_id"]}}
            ),
            "plan_big": status(
                "plan", {"field_compare": {"field": "期末资产规模", "op": "ge", "value": 300}}
            ),
            "won_small": status(
                "plan", {"all": [{"status": "company_won"}, {"not": {"status": "plan_big"}}]}
            ),
        }
    )
    rows = [
        Row(("C1", "P1", "PL201")),
        Row(("C1", "P9", "PL201")),
        Row(("C4", "P4a", "PL202")),
        Row(("C4", "P4b", "PL202")),
        Row(("C5", "P5", "PL203")),
    ]
    names = ["plan_won", "company_won", "plan_big", "won_small"]
    result = evaluate_monthly(db, ruleset, statuses_of(ruleset, names), rows, MARCH)
    assert result == {
        "plan_won": {("C1", "P1", "PL201")},
        # C5's award is for PL201; with match: [company_id] it counts for PL203 too
        "company_won": {("C1", "P1", "PL201"), ("C1", "P9", "PL201"), ("C5", "P5", "PL203")},
        "plan_big": {("C4", "P4a", "PL202")},
        "won_small": {("C1", "P1", "PL201"), ("C1", "P9", "PL201"), ("C5", "P5", "PL203")},
    }


@pytest.mark.parametrize(
    ("grain", "target"),
    [
        ("plan", "is_winning_this_year"),
        ("plan", "company_big"),
        (None, "is_winning_this_year"),  # a status without grain is read on every row
    ],
)
def test_monthly_status_of_another_grain_is_refused(grain: str | None, target: str) -> None:
    """A monthly status is evaluated once per key of its grain: a monthly status pinned to
    another grain has no single value there (docs/snapshots.md), so the loader refuses it."""
    company_big = status(
        "company", {"field_compare": {"field": "期末资产规模", "op": "ge", "value": 600}}
    )
    reader = {"description": "d", "rule": {"status": target}} | ({"grain": grain} if grain else {})
    with pytest.raises(
        RulesInvalid,
        match=f"may read only monthly statuses of its own grain or without one; '{target}'",
    ):
        with_statuses({"company_big": company_big, "reader": reader})


def test_a_status_without_grain_is_read_at_the_readers_grain() -> None:
    """is_churned has no grain: a company-grain status reading it evaluates it per company."""
    ruleset = with_statuses({"company_churned": status("company", {"status": "is_churned"})})
    scope = monthly_scope(ruleset, MARCH)
    rule = ruleset.statuses["company_churned"].rule
    assert compile_rule(rule, scope, "company") == compile_rule(
        ruleset.statuses["is_churned"].rule, scope, "company"
    )
    assert "m_company." in compile_rule(rule, scope, "company")


def test_monthly_status_may_read_annual_statuses_of_any_grain() -> None:
    ruleset = with_statuses({"reader": status("plan", {"status": "is_strategic"})})
    assert ruleset.statuses["reader"].grain == "plan"


@pytest.mark.parametrize(
    ("snapshot", "reported", "visible"),
    [
        (date(2024, 3, 1), date(2024, 11, 1), False),  # later this year: not yet
        (date(2024, 3, 1), date(2024, 4, 1), False),  # the day after the month end
        (date(2024, 3, 1), date(2024, 3, 31), True),  # exactly the month end
        (date(2024, 3, 1), date(2024, 1, 1), True),  # the first day of the year
        (date(2024, 1, 1), date(2023, 12, 1), False),  # last December, seen from January
        (date(2024, 1, 1), date(2023, 12, 31), False),
        (date(2024, 1, 1), date(2024, 1, 31), True),
        (date(2024, 2, 1), date(2024, 2, 29), True),  # leap-year month end
        (date(2024, 12, 1), date(2024, 12, 31), True),
        (date(2024, 12, 1), date(2025, 1, 1), False),
        (date(2024, 3, 1), None, False),  # undated record
    ],
)
def test_exists_in_year_boundaries(
    db: psycopg.Connection, snapshot: date, reported: date | None, visible: bool
) -> None:
    add_events(
        db,
        "当年中标",
        [("C1", "P1", "PL201", reported), ("C2", "P1", "PL201", date(snapshot.year, 1, 1))],
    )
    ruleset = with_statuses({})
    rows = [Row(("C1", None, "PL201")), Row(("C2", None, "PL201"))]
    result = evaluate_monthly(
        db, ruleset, statuses_of(ruleset, ["is_winning_this_year"]), rows, snapshot
    )
    assert result["is_winning_this_year"] == {("C2", None, "PL201")} | (
        {("C1", None, "PL201")} if visible else set()
    )


@pytest.mark.parametrize(
    ("months", "snapshot", "reported", "visible"),
    [
        (1, date(2024, 3, 1), date(2024, 3, 1), True),
        (1, date(2024, 3, 1), date(2024, 3, 31), True),
        (1, date(2024, 3, 1), date(2024, 2, 29), False),
        (1, date(2024, 3, 1), date(2024, 4, 1), False),
        (3, date(2024, 3, 1), date(2024, 1, 1), True),  # Jan, Feb, Mar
        (3, date(2024, 3, 1), date(2023, 12, 31), False),
        (3, date(2024, 1, 1), date(2023, 11, 1), True),  # the window crosses the year
        (3, date(2024, 1, 1), date(2023, 10, 31), False),
        (12, date(2024, 3, 1), date(2023, 4, 1), True),
        (12, date(2024, 3, 1), date(2023, 3, 31), False),
        (120, date(2024, 3, 1), date(2014, 4, 1), True),
        (120, date(2024, 3, 1), date(2014, 3, 31), False),
        (2, date(2024, 3, 1), None, False),
    ],
)
def test_exists_in_window_boundaries(
    db: psycopg.Connection, months: int, snapshot: date, reported: date | None, visible: bool
) -> None:
    add_events(db, "当年流失", [("C1", "P1", "PL201", reported)])
    ruleset = with_statuses(
        {"lost": status("product_line", {"exists_in_window": {"source": "loss", "months": months}})}
    )
    result = evaluate_monthly(
        db, ruleset, statuses_of(ruleset, ["lost"]), [Row(("C1", None, "PL201"))], snapshot
    )
    assert result["lost"] == ({("C1", None, "PL201")} if visible else set())


# --- all / any / not ------------------------------------------------------------------------

#: A leaf's name, or (all|any, [trees]), or (not, tree).
Tree = str | tuple[str, Any]


def all_(*children: Tree) -> Tree:
    return ("all", list(children))


def any_(*children: Tree) -> Tree:
    return ("any", list(children))


def not_(child: Tree) -> Tree:
    return ("not", child)


def tree_rule(tree: Tree) -> dict[str, Any]:
    if isinstance(tree, str):
        return LEAVES[tree][0]
    kind, arg = tree
    if kind == "not":
        return {"not": tree_rule(arg)}
    return {kind: [tree_rule(child) for child in arg]}


def tree_holds(tree: Tree, row: int) -> bool:
    """The oracle: Python's two-valued logic over the leaves' truth tables."""
    if isinstance(tree, str):
        return LEAVES[tree][1][row] == "T"
    kind, arg = tree
    if kind == "not":
        return not tree_holds(arg, row)
    return (all if kind == "all" else any)(tree_holds(child, row) for child in arg)


NESTED: list[tuple[Tree, str]] = [
    (not_(not_(not_("win"))), "FTFTTT"),
    (all_("win", not_("existing")), "FFTFFF"),
    (any_(all_("eq", not_("le0")), all_("first", "big")), "TFFTFF"),
    (not_(any_(all_(not_("gone"), any_("loss2", not_("ne0"))), "first")), "TFTFFF"),
    (all_(any_(all_(any_(not_("winning"))))), "FTFTTT"),
    (any_("gone", all_("le0", not_(any_("eq", "gone_facts")))), "FTTFFT"),
]


@pytest.mark.parametrize(("tree", "truth"), NESTED, ids=[str(i) for i in range(len(NESTED))])
def test_nested_combinators(db: psycopg.Connection, tree: Tree, truth: str) -> None:
    assert truth == "".join("T" if tree_holds(tree, i) else "F" for i in range(len(ROW_KEYS)))
    month_data(db)
    ruleset = with_statuses({"probe": status("product_line", tree_rule(tree))}, MONTH_CONFIG)
    result = evaluate_monthly(db, ruleset, statuses_of(ruleset, ["probe"]), MONTH_ROWS, MARCH)
    assert result["probe"] == holds(truth)


trees = st.recursive(
    st.sampled_from(sorted(LEAVES)),
    lambda children: st.one_of(
        st.tuples(st.sampled_from(["all", "any"]), st.lists(children, min_size=1, max_size=3)),
        st.tuples(st.just("not"), children),
    ),
    max_leaves=10,
)


def test_combinators_match_two_valued_logic(conn: psycopg.Connection) -> None:
    """Any tree of all/any/not over the leaves gives, on every row, what Python's logic on
    the leaves' truth tables gives: parentheses are where they must be, and no leaf is NULL
    (so `not` means what it says)."""
    with conn.transaction(force_rollback=True):
        month_data(conn)

        @PROPERTY
        @given(st.lists(trees, min_size=1, max_size=4))
        def check(batch: list[Tree]) -> None:
            ruleset = with_statuses(
                {f"probe_{i}": status("product_line", tree_rule(t)) for i, t in enumerate(batch)},
                MONTH_CONFIG,
            )
            names = [f"probe_{i}" for i in range(len(batch))]
            result = evaluate_monthly(conn, ruleset, statuses_of(ruleset, names), MONTH_ROWS, MARCH)
            for name, tree in zip(names, batch, strict=True):
                expected = {key for i, key in enumerate(ROW_KEYS) if tree_holds(tree, i)}
                assert result[name] == expected, tree

        check()


# --- annual and contract statuses: fact aggregates at a reference month ----------------------

DECEMBER = date(2023, 12, 1)
A, B, C = ("C1", "P1", "PL201"), ("C1", "P2", "PL201"), ("C2", "P1", "PL202")
D, E, F = ("C3", "P1", "PL202"), ("C4", "P1", "PL203"), ("C5", "P1", "PL204")
PLAN_KEYS = (A, B, C, D, E, F)  # F has no facts
PLAN_FACTS = (
    (*A, 60, "企年受托", "B1"),
    (*A, 40, None, "B1"),
    (*B, Decimal("100.5"), None, "B1"),
    (*C, 0, "企年投资", "B2"),
    (*D, -5, "it's", "B2"),
    (*E, None, "企年受托", "B2"),
)
ALL = set(PLAN_KEYS)

COMPARISONS: list[tuple[str, Any, set[Key]]] = [
    ("gt", 100, {B}),
    ("ge", 100, {A, B}),
    ("lt", 100, {C, D, E, F}),
    ("le", 100, {A, C, D, E, F}),
    ("ne", 100, {B, C, D, E, F}),
    ("gt", 0, {A, B}),
    ("ge", 0, {A, B, C, E, F}),  # no facts, or only a NULL measure: the sum is 0
    ("lt", 0, {D}),
    ("le", 0, {C, D, E, F}),
    ("ne", 0, {A, B, D}),
    ("ge", 100.5, {B}),
    ("gt", 100.5, set()),
    ("gt", -5, ALL - {D}),
    ("ge", -5, ALL),
    ("lt", -0.5, {D}),
    ("le", 1e-9, {C, D, E, F}),
    ("gt", 1e16, set()),
    ("ge", {"config": "strategic_threshold"}, {A, B}),
    ("ge", {"config": "ratio"}, {B}),
    ("lt", {"config": "ratio"}, ALL - {B}),
]


def plan_facts(conn: psycopg.Connection) -> None:
    add_facts(conn, DECEMBER, PLAN_FACTS)
    add_facts(conn, date(2023, 11, 1), [(*F, 1000, "企年受托", "B1")])  # another month


def test_field_compare_every_op_number_and_config(db: psycopg.Connection) -> None:
    plan_facts(db)
    statuses = {
        f"cmp_{i}": status(
            "plan",
            {"field_compare": {"field": "期末资产规模", "op": op, "value": value}},
            annual=True,
        )
        for i, (op, value, _) in enumerate(COMPARISONS)
    }
    ruleset = with_statuses(statuses, {"strategic_threshold": 100, "ratio": 100.5})
    result = evaluate_annual(db, ruleset, list(statuses), PLAN_KEYS, DECEMBER)
    assert result == {f"cmp_{i}": expected for i, (_, _, expected) in enumerate(COMPARISONS)}


def test_field_compare_at_coarser_grains(db: psycopg.Connection) -> None:
    plan_facts(db)
    compare = {"field_compare": {"field": "期末资产规模", "op": "ge", "value": 200}}
    statuses = {
        "company_200": status("company", compare, annual=True),  # C1: 60 + 40 + 100.5
        "line_200": status("product_line", compare, annual=True),
        "plan_200": status("plan", compare, annual=True),
        "not_company_200": status("plan", {"not": {"status": "company_200"}}, annual=True),
    }
    result = evaluate_annual(db, with_statuses(statuses), list(statuses), PLAN_KEYS, DECEMBER)
    assert result == {
        "company_200": {A, B},
        "line_200": {A, B},
        "plan_200": set(),
        "not_company_200": ALL - {A, B},
    }


EQUALITIES: list[tuple[str, Any, set[Key]]] = [
    ("业务类型", "企年受托", {A, E}),  # A: one row of two; its other row is NULL
    ("业务类型", "企年投资", {C}),
    ("业务类型", "it's", {D}),
    ("业务类型", "nothing", set()),
    ("期末资产规模", 60, {A}),  # a row's value, not the sum
    ("期末资产规模", 100, set()),
    ("期末资产规模", 100.5, {B}),
    ("期末资产规模", 0, {C}),
    ("期末资产规模", -5, {D}),
]


def test_field_equals_reads_rows(db: psycopg.Connection) -> None:
    plan_facts(db)
    statuses = {
        f"eq_{i}": status("plan", {"field_equals": {"field": column, "value": value}}, annual=True)
        for i, (column, value, _) in enumerate(EQUALITIES)
    }
    statuses["not_eq"] = status(
        "plan", {"not": {"field_equals": {"field": "业务类型", "value": "企年受托"}}}, annual=True
    )
    result = evaluate_annual(db, with_statuses(statuses), list(statuses), PLAN_KEYS, DECEMBER)
    expected = {f"eq_{i}": keys for i, (_, _, keys) in enumerate(EQUALITIES)}
    assert result == expected | {"not_eq": {B, C, D, F}}


def test_contract_status_cases(db: psycopg.Connection) -> None:
    plan_facts(db)

    def edit(sections: dict[str, Any]) -> None:
        sections["contract"]["status"]["cases"] += [
            {
                "value": "停缴",
                "when": {
                    "not": {"field_compare": {"field": "期末资产规模", "op": "gt", "value": 0}}
                },
            },
            {
                "value": "停缴",
                "when": {
                    "any": [
                        {"field_equals": {"field": "业务类型", "value": "it's"}},
                        {"field_compare": {"field": "期末资产规模", "op": "ge", "value": 100}},
                    ]
                },
            },
        ]

    result = evaluate_contract(db, load(edit), PLAN_KEYS, DECEMBER)
    assert result == {"0": {A, B}, "1": {C, D, E, F}, "2": {A, B, D}}


def test_top_n_ranks_with_ties(db: psycopg.Connection) -> None:
    """is_strategic (default rule): the company reaches the threshold, or ranks within the
    top N of some branch by AUM; equal sums share a rank, NULL sums rank last."""
    rows = [
        ("T1", "P1", "PL201", 300, None, "B1"),
        ("T2", "P1", "PL201", 120, None, "B1"),
        ("T2", "P2", "PL202", 80, None, "B1"),  # T2's sum in B1 is 200
        ("T3", "P1", "PL201", 200, None, "B1"),  # ties T2
        ("T8", "P1", "PL201", 150, None, "B1"),
        ("T4", "P1", "PL201", 100, None, "B1"),
        ("T5", "P1", "PL201", 50, None, "B2"),
        ("T6", "P1", "PL201", None, None, "B2"),  # NULL: ranks after T7
        ("T7", "P1", "PL201", 10, None, "B2"),
        ("T8", "P2", "PL201", 1, None, "B3"),  # T8 is first of B3
        ("T10", "P1", "PL201", 70, None, "B4"),
        ("T11", "P1", "PL201", 70, None, "B4"),  # a tie at rank 1
        ("T12", "P1", "PL201", 5, None, None),  # a company with no branch: a group of its own
    ]
    add_facts(db, DECEMBER, rows)
    companies = sorted({r[0] for r in rows} | {"T9"})  # T9 has no facts
    keys = [(c, "P1", "PL201") for c in companies]

    def top(n: int) -> dict[str, Any]:
        return {"top_n": {"field": "期末资产规模", "n": n, "within": "机构代码"}}

    statuses = {
        "top_1": status("company", top(1), annual=True),
        "top_2": status("company", top(2), annual=True),
        "top_3": status("company", top(3), annual=True),
        "top_cfg": status(
            "company",
            {
                "top_n": {
                    "field": "期末资产规模",
                    "n": {"config": "whitelist_top_n"},
                    "within": "机构代码",
                }
            },
            annual=True,
        ),
        "not_top_1": status("company", {"not": top(1)}, annual=True),
    }
    ruleset = with_statuses(statuses, {"strategic_threshold": 100, "whitelist_top_n": 2})
    result = evaluate_annual(db, ruleset, [*statuses, "is_strategic"], keys, DECEMBER)
    named = {name: {k[0] for k in hits} for name, hits in result.items()}
    top_1 = {"T1", "T5", "T8", "T10", "T11", "T12"}
    top_2 = top_1 | {"T2", "T3", "T7"}
    assert named == {
        "top_1": top_1,
        "top_2": top_2,
        "top_3": top_2 | {"T6"},  # T4 ranks 5th in B1 (T2 and T3 share 2nd, T8 4th)
        "top_cfg": top_2,
        "not_top_1": set(companies) - top_1,
        "is_strategic": top_2 | {"T4"},  # T4 reaches the threshold, 5th in its branch
    }


def test_annual_status_reads_annual_statuses_of_other_grains(db: psycopg.Connection) -> None:
    plan_facts(db)
    statuses = {
        "big_company": status(
            "company",
            {"field_compare": {"field": "期末资产规模", "op": "ge", "value": 200}},
            annual=True,
        ),
        "small_plan_of_big_company": status(
            "plan",
            {"all": [{"status": "big_company"}, {"not": {"status": "is_existing"}}]},
            annual=True,
        ),
    }
    ruleset = with_statuses(statuses)
    keys = [*PLAN_KEYS, ("C1", "P3", "PL202")]  # C1 without facts in PL202
    result = evaluate_annual(
        db, ruleset, ["small_plan_of_big_company", "is_existing"], keys, DECEMBER
    )
    assert result == {"small_plan_of_big_company": {("C1", "P3", "PL202")}, "is_existing": {A, B}}


def test_scopes_refuse_what_the_loader_refuses() -> None:
    ruleset = with_statuses({})
    keys = source_key_columns(ruleset.facts_source)
    monthly = monthly_scope(ruleset, MARCH)
    annual = AnnualScope(ruleset, keys)
    contract = ContractScope(ruleset, FactScope("plan", "m", keys))
    strategic, new = ruleset.statuses["is_strategic"], ruleset.statuses["is_new"]
    with pytest.raises(CompileError, match="top_n cannot be used in a monthly status"):
        compile_rule(strategic.rule, monthly, "company")
    with pytest.raises(CompileError, match="cannot read the monthly status 'is_winning_this_year'"):
        compile_rule(new.rule, annual, "product_line")
    with pytest.raises(CompileError, match="exists_in_year cannot be used in the contract status"):
        compile_rule(ruleset.statuses["is_winning_this_year"].rule, contract, "plan")
    with pytest.raises(CompileError, match="disappeared cannot be used in an annual status"):
        compile_rule(ruleset.statuses["is_churned"].rule, annual, "product_line")
    with pytest.raises(CompileError, match="no aggregates"):
        compile_rule(
            ruleset.statuses["is_churned"].rule,
            MonthlyScope(ruleset, monthly.row, {}),
            "product_line",
        )
    looping = ruleset.model_copy(
        update={
            "statuses": {
                **ruleset.statuses,
                "loop": Status(
                    description="x",
                    grain="plan",
                    rule=Rule.model_validate({"not": {"status": "loop"}}),
                ),
            }
        }
    )
    with pytest.raises(CompileError, match="refers to itself"):
        compile_rule(looping.statuses["loop"].rule, monthly_scope(looping, MARCH), "plan")


# --- hostile identifiers and values -----------------------------------------------------------

LONG = "期" * 21  # 63 bytes in UTF-8: the longest identifier PostgreSQL keeps whole
LONG_MEASURE = "额" * 21
INJECTION = "x'); DROP TABLE t; --"
HOSTILE = {
    "schema": INJECTION,
    "facts": 'a"b',
    "events": "ev\\'ents\\",
    "month": "order",
    "company": "user",
    "plan": "select",
    "product_line": LONG,
    "measure": 'x"); DROP TABLE t; --',
    "kind": "back\\slash\\",
    "branch": "规模 ñ é 🎉 $fn$",
    "flag": "TRUE",
    "e_company": '"',
    "e_plan": "'",
    "e_product_line": "\\",
    "e_date": "$$",
}
HOSTILE_FACTS = (  # (company, plan, product line, measure, kind, branch, flag)
    ("C1", "P1", "L1", 150, INJECTION, "B1", True),
    ("C2", "P1", "L1", 100, "\\'", "B1", False),
    ("C3", "P1", "L1", 10, "it's", "B2", None),
)
HOSTILE_KEYS = [(c, p, line) for c, p, line, *_ in HOSTILE_FACTS]


def hostile_tables(conn: psycopg.Connection) -> None:
    h = {k: ident(v) for k, v in HOSTILE.items()}
    facts = f"{h['schema']}.{h['facts']}"
    events = f"{h['schema']}.{h['events']}"
    conn.execute(
        f"CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3); CREATE SCHEMA {h['schema']}"
    )
    conn.execute(
        f"CREATE TABLE {facts} ({h['month']} date, {h['company']} text, {h['plan']} text,"
        f" {h['product_line']} text, {h['measure']} numeric, {h['kind']} text,"
        f" {h['branch']} text, {h['flag']} boolean)"
    )
    conn.execute(
        f"CREATE TABLE {events} ({h['e_company']} text, {h['e_plan']} text,"
        f" {h['e_product_line']} text, {h['e_date']} date)"
    )
    cursor = conn.cursor()
    cursor.executemany(
        f"INSERT INTO {facts} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [(MARCH, *row) for row in HOSTILE_FACTS],
    )
    cursor.executemany(
        f"INSERT INTO {events} VALUES (%s, %s, %s, %s)",
        [
            ("C1", "P1", "L1", date(2024, 2, 1)),
            ("C2", "P1", "L1", date(2024, 3, 1)),
            ("C3", "P1", "L1", date(2024, 3, 31)),
        ],
    )


def hostile_rules() -> RuleSet:
    h = HOSTILE

    def edit(sections: dict[str, Any]) -> None:
        sections["sources"].clear()
        sections["sources"].update(
            {
                "performance": {
                    "kind": "facts",
                    "table": f"{h['schema']}.{h['facts']}",
                    "date_field": h["month"],
                    "keys": {
                        "company_id": h["company"],
                        "plan_code": h["plan"],
                        "product_line_code": h["product_line"],
                    },
                },
                "award": {
                    "kind": "events",
                    "table": f"{h['schema']}.{h['events']}",
                    "date_field": h["e_date"],
                    "keys": {
                        "company_id": h["e_company"],
                        "plan_code": h["e_plan"],
                        "product_line_code": h["e_product_line"],
                    },
                },
            }
        )
        contract = sections["contract"]
        contract.update(
            measure=h["measure"],
            branch_field=h["branch"],
            tracked_columns=["contract_status", "status_year", "user"],
        )
        contract["status"]["cases"][0]["when"] = {
            "field_compare": {"field": h["measure"], "op": "gt", "value": 0}
        }
        sections["statuses"].clear()
        sections["statuses"].update(
            {
                "user": status(
                    "company",
                    {
                        "any": [
                            {"field_compare": {"field": h["measure"], "op": "ge", "value": 100}},
                            {"top_n": {"field": h["measure"], "n": 1, "within": h["branch"]}},
                        ]
                    },
                    annual=True,
                ),
                "order": status(
                    "product_line",
                    {"field_equals": {"field": h["kind"], "value": INJECTION}},
                    annual=True,
                ),
                "flagged": status(
                    "plan", {"field_equals": {"field": h["flag"], "value": True}}, annual=True
                ),
                "select": status(
                    "plan",
                    {
                        "all": [
                            {"exists_in_year": {"source": "award"}},
                            {"any": [{"status": "user"}, {"status": "order"}]},
                            {"not": {"field_equals": {"field": h["kind"], "value": "\\'"}}},
                        ]
                    },
                ),
                "table": status("plan", {"exists_in_window": {"source": "award", "months": 1}}),
            }
        )

    return load(edit)


def assert_untouched(conn: psycopg.Connection) -> None:
    h = {k: ident(v) for k, v in HOSTILE.items()}
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,)
    assert conn.execute(f"SELECT count(*) FROM {h['schema']}.{h['facts']}").fetchone() == (3,)
    assert conn.execute(f"SELECT count(*) FROM {h['schema']}.{h['events']}").fetchone() == (3,)


@pytest.mark.parametrize("standard_strings", ["on", "off"])
def test_hostile_identifiers_select_the_right_rows(
    db: psycopg.Connection, standard_strings: str
) -> None:
    """Schema, table and column names with quotes, backslashes, SQL, reserved words, unicode
    and 63 bytes; status names that are reserved words. The annual statuses are computed,
    then read by a monthly status through the annual row."""
    hostile_tables(db)
    db.execute(f"SET LOCAL standard_conforming_strings = {standard_strings}")
    ruleset = hostile_rules()
    annual = evaluate_annual(db, ruleset, ["user", "order", "flagged"], HOSTILE_KEYS, MARCH)
    c1, c2, c3 = HOSTILE_KEYS
    assert annual == {
        "user": {c1, c2, c3},  # C1 and C2 reach 100, C3 is first of its branch
        "order": {c1},
        "flagged": {c1},  # C3's flag is NULL
    }
    rows = [
        Row(key, annual={n: key in annual[n] for n in ("user", "order", "flagged")})
        for key in HOSTILE_KEYS
    ]
    monthly = evaluate_monthly(db, ruleset, statuses_of(ruleset, ["select", "table"]), rows, MARCH)
    assert monthly == {"select": {c1, c3}, "table": {c2, c3}}
    contract = evaluate_contract(db, ruleset, HOSTILE_KEYS, MARCH)
    assert contract == {"0": set(HOSTILE_KEYS)}
    assert_untouched(db)


def test_long_names_get_short_aggregate_aliases(db: psycopg.Connection) -> None:
    """`sum_` + a 63-byte column name would be cut short by PostgreSQL: the alias falls back
    to agg_N, and the aggregates still read the right column."""
    hostile_tables(db)
    ruleset = hostile_rules()
    table, measure = qualified(ruleset.facts_source.table), ident(HOSTILE["measure"])
    db.execute(f"ALTER TABLE {table} ADD COLUMN {ident(LONG_MEASURE)} numeric")
    db.execute(f"UPDATE {table} SET {ident(LONG_MEASURE)} = 2 * {measure}")
    facts = FactScope("plan", "m", source_key_columns(ruleset.facts_source))
    scope = ContractScope(ruleset, facts)
    rules = {
        "ge_200": {"field_compare": {"field": LONG_MEASURE, "op": "ge", "value": 200}},
        "eq_20": {"field_equals": {"field": LONG_MEASURE, "value": 20}},
        "gt_50": {"field_compare": {"field": HOSTILE["measure"], "op": "gt", "value": 50}},
    }
    exprs = {name: compile_rule(Rule.model_validate(r), scope, "plan") for name, r in rules.items()}
    assert list(facts.columns) == ["agg_1", "agg_2", f"sum_{HOSTILE['measure']}"]
    joins = join_aggregates([facts], ruleset.facts_source, MARCH, "k")
    c1, c2, c3 = HOSTILE_KEYS
    assert run(db, exprs, "k", keys_relation(HOSTILE_KEYS) + joins) == {
        "ge_200": {c1, c2},
        "eq_20": {c3},
        "gt_50": {c1, c2},
    }
    assert_untouched(db)


HOSTILE_VALUES = [
    INJECTION,
    "'; SELECT pg_catalog.pg_sleep(5); --",
    "it's",
    "''",
    "\\",
    "\\'",
    "back\\slash\\",
    "\\\\'); DROP TABLE t; --",
    "E'\\x41'",
    '"',
    "$$",
    "$fn$",
    "-- comment",
    "/* open",
    "规模明细 ñ 🎉",
    "",
    " ",
    "\n\t\r",
    "%s %(x)s {}",
    "NULL",
    "select",
    "user",
    "\u202e\ufeff",
    "a" * 300,
]


@pytest.mark.parametrize("standard_strings", ["on", "off"])
def test_hostile_values_compare_exactly(db: psycopg.Connection, standard_strings: str) -> None:
    """Each value is held by one key; field_equals on it selects that key and no other."""
    db.execute(f"SET LOCAL standard_conforming_strings = {standard_strings}")
    keys = [(f"V{i}", "P1", "PL201") for i in range(len(HOSTILE_VALUES))]
    add_facts(
        db, DECEMBER, [(*key, 1, value) for key, value in zip(keys, HOSTILE_VALUES, strict=True)]
    )
    db.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3)")
    statuses = {
        f"v_{i}": status(
            "plan", {"field_equals": {"field": "业务类型", "value": value}}, annual=True
        )
        for i, value in enumerate(HOSTILE_VALUES)
    }
    ruleset = with_statuses(statuses)
    for i, value in enumerate(HOSTILE_VALUES):  # the YAML round trip kept the value
        assert ruleset.statuses[f"v_{i}"].rule.body.value == value
    result = evaluate_annual(db, ruleset, list(statuses), keys, DECEMBER)
    assert result == {f"v_{i}": {key} for i, key in enumerate(keys)}
    assert db.execute("SELECT count(*) FROM t").fetchone() == (3,)
    assert db.execute('SELECT count(*) FROM business."规模明细"').fetchone() == (len(keys),)


def test_compiled_values_survive_the_function_body_they_are_placed_in(
    db: psycopg.Connection,
) -> None:
    """The templates place compiled SQL inside `AS $fn$ ... $fn$` (sql/macros/header.sql.j2).
    A rule value holding `$fn$` must not end that body: the rendered function deploys and
    its contract status case matches the value. (Fails today: the literal 'x$fn$y'::text
    closes the dollar-quoted body and the deploy stops with a syntax error.)"""
    from cmdm_admin.render import render_rules

    value = "x$fn$y"

    def edit(sections: dict[str, Any]) -> None:
        sections["contract"]["status"]["cases"].insert(
            0, {"value": "正常", "when": {"field_equals": {"field": "业务类型", "value": value}}}
        )

    rendered = render_rules(load(edit))
    db.execute("INSERT INTO customer.\"年金客户\" (company_id) VALUES ('C1'), ('C2')")
    add_facts(db, MARCH, [("C1", "P1", "PL201", 0, value), ("C2", "P1", "PL201", 0, "other")])
    db.execute(rendered.sql)
    db.execute("SELECT * FROM customer.sync_contract_status(DATE '2024-03-01')")
    statuses = db.execute(
        "SELECT company_id, contract_status FROM customer.customer_plan_contract ORDER BY 1"
    ).fetchall()
    assert statuses == [("C1", "正常"), ("C2", "停缴")]


# --- identifiers and literals: round trips and refusals --------------------------------------

SYSTEM_COLUMNS = {"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"}
no_nul = st.characters(codec="utf-8", exclude_characters="\x00")  # no lone surrogates
identifiers = st.one_of(
    st.text(no_nul, min_size=1, max_size=24),
    st.sampled_from(
        [LONG, "select", "user", "order", 'a"b', INJECTION, "\\", "Upper", "_x1", "1x", " "]
    ),
).filter(lambda s: len(s.encode()) <= MAX_IDENTIFIER_BYTES and s not in SYSTEM_COLUMNS)
scalars = st.one_of(
    st.text(no_nul),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.sampled_from(["\\", "'", "\\'", "''\\\\", INJECTION, "$fn$"]),
)


def expected_value(value: Any) -> Any:
    if isinstance(value, bool | str):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def test_literals_round_trip(
    conn: psycopg.Connection, conn_nonstandard: psycopg.Connection
) -> None:
    """`SELECT <literal(v)>` gives v back, whatever standard_conforming_strings says."""

    @PROPERTY
    @given(scalars)
    def check(value: Any) -> None:
        sql = f"SELECT {literal(value)}"
        for session in (conn, conn_nonstandard):
            (got,) = session.execute(sql).fetchone()
            assert type(got) is (type(value) if isinstance(value, bool | str) else Decimal)
            assert got == expected_value(value), sql

    check()


def test_identifiers_round_trip(conn: psycopg.Connection) -> None:
    """A column created as <ident(name)> is named `name` in the catalog, and reads back."""

    @PROPERTY
    @given(identifiers)
    def check(name: str) -> None:
        column = ident(name)
        with conn.transaction(force_rollback=True):
            conn.execute(f"CREATE TEMP TABLE cmdm_ident_probe ({column} int)")
            conn.execute(f"INSERT INTO cmdm_ident_probe ({column}) VALUES (7)")
            assert conn.execute(
                "SELECT attname FROM pg_catalog.pg_attribute"
                " WHERE attrelid = 'pg_temp.cmdm_ident_probe'::regclass AND attnum > 0"
            ).fetchall() == [(name,)]
            assert conn.execute(f"SELECT p.{column} FROM cmdm_ident_probe p").fetchall() == [(7,)]
            assert conn.execute(
                f"SELECT {column} AS {column} FROM cmdm_ident_probe"
            ).fetchall() == [(7,)]

    check()


def test_every_keyword_works_as_a_column(db: psycopg.Connection) -> None:
    """Every PostgreSQL keyword, written by ident, names a column, bare or qualified; the
    ones PostgreSQL reserves (catcode R and T) are quoted."""
    keywords = db.execute(
        "SELECT word, catcode FROM pg_catalog.pg_get_keywords() ORDER BY word"
    ).fetchall()
    for word, catcode in keywords:
        assert ident(word).startswith('"') == (catcode in "RT"), word
    columns = ", ".join(f"{ident(w)} int" for w, _ in keywords)
    db.execute(f"CREATE TEMP TABLE cmdm_keywords ({columns})")
    names = db.execute(
        "SELECT attname FROM pg_catalog.pg_attribute"
        " WHERE attrelid = 'pg_temp.cmdm_keywords'::regclass AND attnum > 0 ORDER BY attnum"
    ).fetchall()
    assert [n for (n,) in names] == [w for w, _ in keywords]
    db.execute(f"SELECT {', '.join(ident(w) for w, _ in keywords)} FROM cmdm_keywords")
    db.execute(f"SELECT {', '.join('k.' + ident(w) for w, _ in keywords)} FROM cmdm_keywords k")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ident(""), "empty"),
        (lambda: ident("a\x00b"), "NUL"),
        (lambda: ident("x" * 64), "longer than 63 bytes"),
        (lambda: ident("期" * 21 + "x"), "longer than 63 bytes"),  # 64 bytes, 22 characters
        (lambda: ident(None), "not text"),
        (lambda: qualified("a.b\x00"), "NUL"),
        (lambda: qualified("x" * 64 + ".t"), "longer than"),
        (lambda: literal("a\x00"), "NUL"),
        (lambda: text_literal("\x00"), "NUL"),
        (lambda: literal(float("nan")), "cannot write nan"),
        (lambda: literal(float("inf")), "cannot write inf"),
        (lambda: literal(float("-inf")), "cannot write -inf"),
        (lambda: literal(Decimal("NaN")), "cannot write NaN"),
        (lambda: literal(Decimal("Infinity")), "cannot write Infinity"),
        (lambda: literal(None), "cannot write NoneType"),
        (lambda: literal([1]), "cannot write list"),
        (lambda: literal(date(2024, 1, 1)), "cannot write date"),
    ],
)
def test_ident_and_literal_refuse(call: Callable[[], str], message: str) -> None:
    with pytest.raises(CompileError, match=message):
        call()


def test_text_that_is_not_unicode_is_refused() -> None:
    """YAML can write a lone surrogate ("\\ud800"); no PostgreSQL text can hold it. The loader
    refuses it in a rule value (located), and the compiler refuses it like NUL."""
    texts = dict(DEFAULT_TEXTS)
    texts["statuses.yml"] += (
        "  odd:\n"
        "    description: a value written with a YAML escape\n"
        "    grain: plan\n"
        "    annual: true\n"
        '    rule: {field_equals: {field: 业务类型, value: "a\\ud800"}}\n'
    )
    with pytest.raises(RulesInvalid) as refused:
        load_rules_from_texts(texts)
    assert any("not valid Unicode" in issue.message for issue in refused.value.errors)
    value = "a\ud800"
    for call in (lambda: literal(value), lambda: text_literal(value), lambda: ident(value)):
        with pytest.raises(CompileError):
            call()


def test_ident_is_bare_only_for_plain_names() -> None:
    assert [ident(n) for n in ("company_id", "_x1", "sum_a")] == ["company_id", "_x1", "sum_a"]
    assert ident(LONG) == f'"{LONG}"'
    assert [ident(n) for n in ("select", "user", "order", "Upper", "1x", "a b", 'a"b')] == [
        '"select"',
        '"user"',
        '"order"',
        '"Upper"',
        '"1x"',
        '"a b"',
        '"a""b"',
    ]
    assert qualified("business.规模明细") == 'business."规模明细"'
    assert text_literal("it's") == "'it''s'"
    assert text_literal("a\\'b") == "E'a\\\\''b'"
    assert literal(1e16) == "10000000000000000::numeric"
    assert literal(-0.5) == "-0.5::numeric"
    assert literal(True) == "true"


# --- determinism ------------------------------------------------------------------------------


def compiled_text(ruleset: RuleSet) -> str:
    """Every status and contract case compiled in fresh scopes, with the aggregate columns
    and top_n specs each scope registered, as one text."""
    keys = source_key_columns(ruleset.facts_source)
    out = []
    facts = FactScope("plan", "m", keys)
    contract = ContractScope(ruleset, facts)
    out += [compile_rule(case.when, contract, "plan") for case in ruleset.contract.status.cases]
    out.append(repr(facts))
    annual = AnnualScope(ruleset, keys)
    out += [compile_rule(s.rule, annual, s.decided_grain) for s in ruleset.annual_statuses.values()]
    out += [repr(scope) for scope in annual.grains.values()]
    monthly = monthly_scope(ruleset, MARCH)
    out += [
        compile_rule(s.rule, monthly, grain)
        for s in ruleset.monthly_statuses.values()
        for grain in ([s.grain] if s.grain else ["plan", "product_line"])
    ]
    out += [repr(scope) for scope in monthly.facts.values()]
    return "\n".join(out)


def rich_rules() -> RuleSet:
    return with_statuses(
        {f"leaf_{name}": status("product_line", rule) for name, (rule, _) in LEAVES.items()}
        | {
            f"nested_{i}": status("product_line", tree_rule(tree))
            for i, (tree, _) in enumerate(NESTED)
        },
        MONTH_CONFIG,
    )


def test_compiling_twice_gives_the_same_sql() -> None:
    ruleset = rich_rules()
    assert compiled_text(ruleset) == compiled_text(ruleset) == compiled_text(rich_rules())
    # in one scope, a second compile reuses the registered columns
    scope = AnnualScope(ruleset, source_key_columns(ruleset.facts_source))
    strategic = ruleset.statuses["is_strategic"]
    first = compile_rule(strategic.rule, scope, "company")
    columns, top_ns = dict(scope.grains["company"].columns), list(scope.grains["company"].top_ns)
    assert compile_rule(strategic.rule, scope, "company") == first
    assert scope.grains["company"].columns == columns and scope.grains["company"].top_ns == top_ns


def test_aggregate_aliases_are_stable() -> None:
    ruleset = with_statuses({})
    keys = source_key_columns(ruleset.facts_source)
    annual = AnnualScope(ruleset, keys)
    assert compile_rule(ruleset.statuses["is_strategic"].rule, annual, "company") == (
        '(coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric'
        ' OR coalesce(ref_company."top_10_by_机构代码", false))'
    )
    assert annual.grains["company"].columns == {"sum_期末资产规模": 'sum(f."期末资产规模")'}
    assert annual.grains["company"].top_ns == [
        TopN("top_10_by_机构代码", "期末资产规模", 10, "机构代码")
    ]
    facts = FactScope("plan", "m", keys)
    rule = Rule.model_validate(
        {
            "all": [
                {"field_equals": {"field": "业务类型", "value": "a"}},
                {"field_compare": {"field": "期末资产规模", "op": "gt", "value": 0}},
                {"field_equals": {"field": "业务类型", "value": "b"}},
                {"not": {"field_equals": {"field": "业务类型", "value": "a"}}},
            ]
        }
    )
    compile_rule(rule, ContractScope(ruleset, facts), "plan")
    assert list(facts.columns) == ["has_业务类型_1", "sum_期末资产规模", "has_业务类型_3"]
    scope = FactScope("company", "ref_company", keys)
    assert [
        scope.top_n("期末资产规模", 3, "机构代码"),
        scope.top_n("期初资产规模", 3, "机构代码"),
        scope.top_n("期末资产规模", 3, "机构代码"),
    ] == [
        'ref_company."top_3_by_机构代码"',
        "ref_company.top_n_2",
        'ref_company."top_3_by_机构代码"',
    ]


FRESH_PROCESS = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
import test_compiler
print(hashlib.sha256(test_compiler.compiled_text(test_compiler.rich_rules()).encode()).hexdigest())
"""


def test_compiled_sql_is_the_same_in_a_fresh_process() -> None:
    expected = hashlib.sha256(compiled_text(rich_rules()).encode()).hexdigest()
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", FRESH_PROCESS, str(TESTS_DIR)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=TESTS_DIR,  # `-c` puts the working directory first on sys.path: not the checkout
        )
        for seed in ("0", "4242")
    ]
    assert [run_.communicate(timeout=60)[0].strip() for run_ in runs] == [expected, expected]
