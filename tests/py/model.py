"""Shapes and helpers of the property tests: the rows they compare, the rejects of
cmdm.rejected_fact, and adapters to the oracle.

What the three output tables must hold is decided by tests/py/oracle.py, written from
DESIGN §4 alone by someone who had not read the templates (this file's earlier model was
written from the same reading as the SQL and agreed with its bugs). `history` and
`snapshots` here only translate the property tests' rows to the oracle's world and back.

Rejects (not the oracle's concern): a fact row is valid when company_id, plan and product
line are non-NULL and not blank (empty or only spaces, tabs, line breaks), the product
line is in mapping."产品线" and the company in customer."年金客户". Other rows are rejects,
with the first reason that applies: null_key, blank_key, unknown_product_line,
unknown_company.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import oracle

END_OF_TIME = date(9999, 12, 31)
NORMAL = "正常"
SUSPENDED = "停缴"
#: Seeded by the base migration: code -> name (mapping."产品线").
DEFAULT_PRODUCT_LINE_NAMES = {
    "PL201": "企年投资",
    "PL202": "企年受托",
    "PL203": "职年受托",
    "PL204": "职年投资",
    "PL205": "养老保障",
}
DEFAULT_PRODUCT_LINES = frozenset(DEFAULT_PRODUCT_LINE_NAMES)

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Rules:
    strategic_threshold: Decimal | int = 500_000_000
    whitelist_top_n: int = 10
    on_missing: str = "suspend"  # or "close"

    def __post_init__(self) -> None:
        if self.on_missing not in ("suspend", "close"):
            raise ValueError(f"on_missing must be suspend or close, not {self.on_missing!r}")


@dataclass(frozen=True)
class Fact:
    """One row of business."规模明细" (the columns the contract history reads)."""

    month: date  # "月度": any day of the month
    company_id: str | None
    plan_code: str | None
    product_line_code: str | None
    aum: Decimal | int | None  # "期末资产规模"
    branch: str | None = None  # "机构代码"
    portfolio: str | None = None  # "组合代码"


@dataclass(frozen=True, order=True)
class Version:
    """One row of customer.customer_plan_contract (the columns the history defines)."""

    company_id: str
    plan_code: str
    product_line_code: str
    valid_from: date
    valid_to: date
    contract_status: str
    status_year: int
    is_strategic: bool
    is_existing: bool

    @property
    def state(self) -> State:
        return State(self.contract_status, self.status_year, self.is_strategic, self.is_existing)


@dataclass(frozen=True)
class Reject:
    """One row of cmdm.rejected_fact (without its id and timestamp)."""

    period: date  # month-end
    reason: str
    company_id: str | None
    plan_code: str | None
    product_line_code: str | None
    portfolio_code: str | None
    aum: Decimal | int | None


@dataclass(frozen=True)
class State:
    contract_status: str
    status_year: int
    is_strategic: bool
    is_existing: bool


def month_start(d: date) -> date:
    return d.replace(day=1)


def month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


#: What a blank key part may hold (as the SQL's btrim: spaces, tabs, line breaks).
BLANKS = " \t\r\n"


def key_parts(fact: Fact) -> tuple[str, str, str]:
    assert fact.company_id is not None and fact.plan_code is not None
    assert fact.product_line_code is not None
    return (fact.company_id, fact.plan_code, fact.product_line_code)


def reject_reason(
    fact: Fact, companies: Iterable[str], product_lines: Iterable[str] = DEFAULT_PRODUCT_LINES
) -> str | None:
    """Why the row is not a contract fact, or None when it is valid."""
    if fact.company_id is None or fact.plan_code is None or fact.product_line_code is None:
        return "null_key"
    if any(not part.strip(BLANKS) for part in key_parts(fact)):
        return "blank_key"
    if fact.product_line_code not in set(product_lines):
        return "unknown_product_line"
    if fact.company_id not in set(companies):
        return "unknown_company"
    return None


def rejects(
    facts: Iterable[Fact],
    companies: Iterable[str],
    product_lines: Iterable[str] = DEFAULT_PRODUCT_LINES,
) -> list[Reject]:
    """What cmdm.rejected_fact holds once every loaded month was synced: one row per
    rejected fact row."""
    companies, product_lines = frozenset(companies), frozenset(product_lines)
    out = []
    for f in facts:
        reason = reject_reason(f, companies, product_lines)
        if reason is not None:
            out.append(
                Reject(
                    month_end(f.month),
                    reason,
                    f.company_id,
                    f.plan_code,
                    f.product_line_code,
                    f.portfolio,
                    f.aum,
                )
            )
    return out


def loaded_months(facts: Iterable[Fact]) -> list[date]:
    """Month-ends of the months with at least one row, ascending."""
    return sorted({month_end(f.month) for f in facts})


def history(
    facts: Iterable[Fact],
    companies: Iterable[str],
    rules: Rules = Rules(),
    product_lines: Mapping[str, str] = DEFAULT_PRODUCT_LINE_NAMES,
) -> list[Version]:
    """customer.customer_plan_contract as the oracle has it, in Version rows, sorted."""
    world = _world(facts, companies, (), (), rules, product_lines)
    return sorted(
        Version(c, p, pl, frm, to, status, year, strategic, existing)
        for c, p, pl, _, frm, to, status, strategic, existing, year in oracle.contract_history(
            world
        )
    )


def _world(
    facts: Iterable[Fact],
    companies: Iterable[str],
    awards: Iterable[Event],
    losses: Iterable[Event],
    rules: Rules,
    product_lines: Mapping[str, str],
) -> oracle.World:
    def event(e: Event) -> oracle.EventRow:
        return oracle.EventRow(e.company_id, e.plan_code, e.product_line_code, e.reported)

    return oracle.World(
        facts=tuple(
            oracle.FactRow(
                f.month,
                f.company_id,
                f.plan_code,
                f.product_line_code,
                f.branch,
                None if f.aum is None else Decimal(f.aum),
            )
            for f in facts
        ),
        awards=tuple(map(event, awards)),
        losses=tuple(map(event, losses)),
        companies=frozenset(companies),
        product_lines=dict(product_lines),
        strategic_threshold=Decimal(rules.strategic_threshold),
        whitelist_top_n=rules.whitelist_top_n,
        on_missing=rules.on_missing,
    )


@dataclass(frozen=True)
class Event:
    """One row of customer."当年中标" (awards) or customer."当年流失" (losses), without its
    id."""

    company_id: str | None
    product_line_code: str | None
    plan_code: str | None
    reported: date | None  # "上报月份"


@dataclass(frozen=True, order=True)
class BusinessRow:
    """One row of customer.fct_customer_business_monthly_status (without updated_at)."""

    snapshot_month: date
    company_id: str
    product_line_code: str
    product_line_name: str
    is_strategic: bool
    is_existing: bool
    is_new: bool
    is_winning_this_year: bool
    is_churned_this_year: bool
    aum_balance: Decimal
    plan_count: int
    is_new_arrival: bool
    is_churned: bool


@dataclass(frozen=True, order=True)
class PlanRow:
    """One row of customer.fct_customer_plan_monthly_status (without updated_at)."""

    snapshot_month: date
    company_id: str
    plan_code: str
    product_line_code: str
    product_line_name: str
    is_strategic: bool
    is_existing: bool
    is_new: bool
    is_winning_this_year: bool
    is_churned_this_year: bool
    aum_balance: Decimal
    is_new_arrival: bool
    is_churned: bool


def event_dependent_months(loaded: Iterable[date], reported: date) -> list[date]:
    """The loaded month-ends whose default statuses can see an events row reported on
    `reported` (exists_in_year): from its month through December of its year."""
    first, last = month_end(reported), date(reported.year, 12, 31)
    return sorted(m for m in loaded if first <= m <= last)


def snapshots(
    facts: Iterable[Fact],
    companies: Iterable[str],
    awards: Iterable[Event] = (),
    losses: Iterable[Event] = (),
    rules: Rules = Rules(),
    product_lines: Mapping[str, str] = DEFAULT_PRODUCT_LINE_NAMES,
    months: Iterable[date] | None = None,
) -> tuple[list[BusinessRow], list[PlanRow]]:
    """Both snapshot tables as the oracle has them (of `months` only, when given), sorted."""
    world = _world(facts, companies, awards, losses, rules, product_lines)
    wanted = None if months is None else {month_end(m) for m in months}
    business = [
        BusinessRow(m, c, pl, name, strat, exist, new, win, lost, aum, count, arrival, churned)
        for (
            m,
            c,
            pl,
            name,
            aum,
            count,
            strat,
            exist,
            new,
            win,
            lost,
            arrival,
            churned,
        ) in oracle.business_snapshot(world)
        if wanted is None or m in wanted
    ]
    plans = [
        PlanRow(m, c, p, pl, name, strat, exist, new, win, lost, aum, arrival, churned)
        for (
            m,
            c,
            p,
            pl,
            name,
            aum,
            strat,
            exist,
            new,
            win,
            lost,
            arrival,
            churned,
        ) in oracle.plan_snapshot(world)
        if wanted is None or m in wanted
    ]
    return sorted(business), sorted(plans)
