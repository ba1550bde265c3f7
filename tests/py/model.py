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

It also computes the monthly snapshots of docs/snapshots.md (customer.
fct_customer_business_monthly_status and customer.fct_customer_plan_monthly_status) with the
default statuses of rules/statuses.yml, as of each loaded month m:

* Plan population: the keys with a state at m (above). Business population: their
  (company, product line) pairs. A month that is not loaded has no rows.
* is_strategic, is_existing: the key's state on the plan table, bool_or over the pair's keys
  in the population on the business table.
* Monthly statuses, all of grain product_line (the plan table shows the pair's value):
  is_winning_this_year / is_churned_this_year: an award / loss row with the pair's company
  and product line (its plan code is ignored) reported on a day in [January 1 of m's year,
  m]; a NULL date never matches. is_new: is_winning_this_year and not the pair's
  is_existing. is_new_arrival: the pair has valid rows at m and none at an earlier loaded
  month. is_churned: the pair had valid rows at the previous loaded month and has none at m,
  or the SUM of its valid AUM at m is <= 0 (no non-NULL value: 0).
* aum_balance: SUM of the key's (plan) or the pair's (business) valid AUM at m, NULLs
  ignored, 0 when none, rounded half away from zero to 2 decimals (numeric(20,2)).
  plan_count: the pair's keys in the population.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

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


# ---------------------------------------------------------------------------------------
# Monthly snapshots (docs/snapshots.md, default statuses)

Pair = tuple[str, str]  # (company_id, product_line_code)
CENT = Decimal("0.01")


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


@dataclass(frozen=True)
class PairStatuses:
    """The monthly statuses of one (company, product line) pair at one month."""

    is_winning_this_year: bool
    is_churned_this_year: bool
    is_new: bool
    is_new_arrival: bool
    is_churned: bool


def numeric_20_2(value: Decimal | int | None) -> Decimal:
    """A SUM stored into numeric(20,2): NULL as 0, rounded half away from zero."""
    return Decimal(value if value is not None else 0).quantize(CENT, rounding=ROUND_HALF_UP)


def exists_in_year(events: Iterable[Event], pair: Pair, month: date) -> bool:
    """An events row of the pair reported in month's calendar year, on or before its
    month-end (the plan code of the row does not matter; a NULL date never matches)."""
    end = month_end(month)
    first = date(end.year, 1, 1)
    return any(
        (e.company_id, e.product_line_code) == pair
        and e.reported is not None
        and first <= e.reported <= end
        for e in events
    )


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
    """The rows of both snapshot tables for the given months (any day names a month;
    default: every loaded month), sorted. A month that is not loaded has no rows."""
    facts, awards, losses = list(facts), list(awards), list(losses)
    companies = frozenset(companies)
    loaded, per_key = states(facts, companies, rules, product_lines)
    wanted = set(loaded) if months is None else {month_end(m) for m in months}

    # the valid AUM values of each key at each loaded month
    valid_aum: dict[date, dict[Key, list]] = defaultdict(lambda: defaultdict(list))
    for f in facts:
        if reject_reason(f, companies, product_lines) is None:
            valid_aum[month_end(f.month)][(f.company_id, f.plan_code, f.product_line_code)].append(
                f.aum
            )
    present: dict[date, set[Pair]] = {
        m: {(k[0], k[2]) for k in valid_aum.get(m, {})} for m in loaded
    }

    business: list[BusinessRow] = []
    plans: list[PlanRow] = []
    for i, m in enumerate(loaded):
        if m not in wanted:
            continue
        population = {k: by_month[m] for k, by_month in per_key.items() if m in by_month}
        by_pair: dict[Pair, list[Key]] = defaultdict(list)
        for k in population:
            by_pair[(k[0], k[2])].append(k)
        previous = loaded[i - 1] if i > 0 else None
        earlier = set().union(*(present[x] for x in loaded[:i]))
        for pair, keys in sorted(by_pair.items()):
            pair_values = [a for k in keys for a in valid_aum.get(m, {}).get(k, [])]
            pair_sum = sql_sum(pair_values) or 0
            strategic = any(population[k].is_strategic for k in keys)
            existing = any(population[k].is_existing for k in keys)
            winning = exists_in_year(awards, pair, m)
            disappeared = (
                previous is not None and pair in present[previous] and pair not in present[m]
            )
            statuses = PairStatuses(
                is_winning_this_year=winning,
                is_churned_this_year=exists_in_year(losses, pair, m),
                is_new=winning and not existing,
                is_new_arrival=pair in present[m] and pair not in earlier,
                is_churned=disappeared or pair_sum <= 0,
            )
            name = product_lines[pair[1]]
            business.append(
                BusinessRow(
                    m,
                    pair[0],
                    pair[1],
                    name,
                    strategic,
                    existing,
                    statuses.is_new,
                    statuses.is_winning_this_year,
                    statuses.is_churned_this_year,
                    numeric_20_2(pair_sum),
                    len(keys),
                    statuses.is_new_arrival,
                    statuses.is_churned,
                )
            )
            for k in keys:
                state = population[k]
                plans.append(
                    PlanRow(
                        m,
                        k[0],
                        k[1],
                        k[2],
                        name,
                        state.is_strategic,
                        state.is_existing,
                        statuses.is_new,
                        statuses.is_winning_this_year,
                        statuses.is_churned_this_year,
                        numeric_20_2(sql_sum(valid_aum.get(m, {}).get(k, []))),
                        statuses.is_new_arrival,
                        statuses.is_churned,
                    )
                )
    return sorted(business), sorted(plans)
