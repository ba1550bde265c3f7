"""A small pure-Python model of the contract history of DESIGN §4.

It computes, from the rows of business."规模明细" and the two mapping tables, what
customer.customer_plan_contract and cmdm.rejected_fact must hold: no incremental steps,
no database, just the definition. The property tests compare the database with it.

Semantics (DESIGN §4, with the default rules):

* A fact row is valid when company_id, plan and product line are non-NULL, the product line
  is in mapping."产品线" and the company in customer."年金客户". Other rows are rejects,
  with the first reason that applies: null_key, unknown_product_line, unknown_company.
* Loaded months: months with at least one row, valid or not.
* State of key k at loaded month x: contract_status 正常 when the SUM of the AUM of k's valid
  rows of x is > 0 (NULL AUMs are ignored; all-NULL counts as 0), 停缴 otherwise; when k has
  no rows in x: 停缴 under on_missing = suspend if k had rows in an earlier loaded month,
  else no state. Plus status_year = year(x) and the annual flags of that year.
* Annual flags of year Y are evaluated at the reference month R(Y): the last loaded month
  before January 1 of Y, else the first loaded month of Y; only valid rows of R count.
  is_strategic(company): SUM(AUM) >= threshold, or one of its (company, branch) pairs ranks
  <= top_n within its branch by SUM(AUM) descending (SQL rank(): ties share a rank; NULL
  sums last; a NULL branch is one group). is_existing(company, product line): SUM > 0.
* History: one piece per loaded month with a state, [month_end(x), month_end(next loaded
  month)) or [month_end(x), 9999-12-31) for the last; consecutive touching pieces with equal
  states merge into one version.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

END_OF_TIME = date(9999, 12, 31)
NORMAL = "正常"
SUSPENDED = "停缴"
#: Seeded by the base migration.
DEFAULT_PRODUCT_LINES = frozenset({"PL201", "PL202", "PL203", "PL204", "PL205"})

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


def reject_reason(
    fact: Fact, companies: Iterable[str], product_lines: Iterable[str] = DEFAULT_PRODUCT_LINES
) -> str | None:
    """Why the row is not a contract fact, or None when it is valid."""
    if fact.company_id is None or fact.plan_code is None or fact.product_line_code is None:
        return "null_key"
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


def sql_sum(values: Iterable[Decimal | int | None]) -> Decimal | int | None:
    """SQL SUM: NULLs ignored; NULL when there is no non-NULL value."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def reference_month(loaded: list[date], year: int) -> date | None:
    """R(year): the last loaded month before January 1 of the year, else the year's first
    loaded month, else None. `loaded` are ascending month-ends."""
    before = [m for m in loaded if m.year < year]
    if before:
        return before[-1]
    within = [m for m in loaded if m.year == year]
    return within[0] if within else None


def sql_rank_desc_nulls_last(sums: Mapping[object, Decimal | int | None]) -> dict[object, int]:
    """rank() OVER (ORDER BY s DESC NULLS LAST): 1 + the number of rows strictly ahead."""
    ranks = {}
    for item, s in sums.items():
        if s is None:
            ahead = sum(1 for o in sums.values() if o is not None)
        else:
            ahead = sum(1 for o in sums.values() if o is not None and o > s)
        ranks[item] = ahead + 1
    return ranks


def annual_flags(
    valid_facts: Iterable[Fact], rules: Rules
) -> tuple[set[str], set[tuple[str, str]]]:
    """(strategic companies, existing (company, product line) pairs) from the valid rows of
    one reference month."""
    valid_facts = list(valid_facts)
    by_company: dict[str, list] = defaultdict(list)
    by_pair: dict[tuple[str, str | None], list] = defaultdict(list)
    by_line: dict[tuple[str, str], list] = defaultdict(list)
    for f in valid_facts:
        by_company[f.company_id].append(f.aum)
        by_pair[(f.company_id, f.branch)].append(f.aum)
        by_line[(f.company_id, f.product_line_code)].append(f.aum)

    strategic = {
        c for c, values in by_company.items() if (sql_sum(values) or 0) >= rules.strategic_threshold
    }
    branches: dict[str | None, dict[str, Decimal | int | None]] = defaultdict(dict)
    for (company, branch), values in by_pair.items():
        branches[branch][company] = sql_sum(values)
    for pairs in branches.values():
        for company, rank in sql_rank_desc_nulls_last(pairs).items():
            if rank <= rules.whitelist_top_n:
                strategic.add(company)

    existing = {pair for pair, values in by_line.items() if (sql_sum(values) or 0) > 0}
    return strategic, existing


def states(
    facts: Iterable[Fact],
    companies: Iterable[str],
    rules: Rules = Rules(),
    product_lines: Iterable[str] = DEFAULT_PRODUCT_LINES,
) -> tuple[list[date], dict[Key, dict[date, State]]]:
    """(loaded month-ends, the state of every key at every loaded month where it has one)."""
    facts = list(facts)
    companies, product_lines = frozenset(companies), frozenset(product_lines)
    loaded = loaded_months(facts)
    valid = [f for f in facts if reject_reason(f, companies, product_lines) is None]

    month_aum: dict[date, dict[Key, list]] = defaultdict(lambda: defaultdict(list))
    valid_by_month: dict[date, list[Fact]] = defaultdict(list)
    for f in valid:
        m = month_end(f.month)
        month_aum[m][(f.company_id, f.plan_code, f.product_line_code)].append(f.aum)
        valid_by_month[m].append(f)

    flags = {}
    for year in sorted({m.year for m in loaded}):
        r = reference_month(loaded, year)
        flags[year] = annual_flags(valid_by_month.get(r, []), rules)

    keys = sorted({k for per_month in month_aum.values() for k in per_month})
    result: dict[Key, dict[date, State]] = {}
    for key in keys:
        seen = False
        per_key = {}
        for m in loaded:
            if key in month_aum[m]:
                status = NORMAL if (sql_sum(month_aum[m][key]) or 0) > 0 else SUSPENDED
                seen = True
            elif seen and rules.on_missing == "suspend":
                status = SUSPENDED
            else:
                continue
            strategic, existing = flags[m.year]
            per_key[m] = State(status, m.year, key[0] in strategic, (key[0], key[2]) in existing)
        result[key] = per_key
    return loaded, result


def history(
    facts: Iterable[Fact],
    companies: Iterable[str],
    rules: Rules = Rules(),
    product_lines: Iterable[str] = DEFAULT_PRODUCT_LINES,
) -> list[Version]:
    """Every version of customer.customer_plan_contract, sorted by key and valid_from."""
    loaded, per_key = states(facts, companies, rules, product_lines)
    following = dict(zip(loaded, [*loaded[1:], END_OF_TIME][: len(loaded)], strict=True))
    out: list[Version] = []
    for key, by_month in sorted(per_key.items()):
        current: Version | None = None
        for m in loaded:
            state = by_month.get(m)
            if state is None:
                continue
            piece_to = following[m]
            if current is not None and current.valid_to == m and current.state == state:
                current = Version(*key, current.valid_from, piece_to, *_fields(state))
                out[-1] = current
            else:
                current = Version(*key, m, piece_to, *_fields(state))
                out.append(current)
    return out


def _fields(state: State) -> tuple[str, int, bool, bool]:
    return (state.contract_status, state.status_year, state.is_strategic, state.is_existing)
