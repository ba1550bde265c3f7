"""Independent test oracle for cmdm, written from DESIGN.md sections 3 and 4 alone.

A small, literal, pure-Python model of the three outputs
(customer.customer_plan_contract, customer.fct_customer_business_monthly_status,
customer.fct_customer_plan_monthly_status) and of the loaded / reference months.
It is slow on purpose (every value is recomputed from the facts each time it is
needed); worlds are tiny. Standard library only.

Readings
========
Every place where the text of DESIGN §3/§4 (and rules/*.yml) left a choice, what this
oracle chose and why. "DESIGN" quotes are from §4 unless said otherwise.

R1  Valid rows. "Rows with a NULL key part, or whose product line / company is unknown to
    the mapping tables, are not contracts". A fact row is *valid* iff company_id,
    plan_code and product_line_code are all non-NULL and not blank (issue 18: '' or only
    spaces, tabs, line breaks is no key), company_id is in customer."年金客户" and
    product_line_code is in mapping."产品线" (exact string match, no trimming or case
    folding). The branch (机构代码) and the AUM are NOT key parts: a
    row with a NULL branch or a NULL AUM is a valid contract row. Invalid rows contribute
    nothing to any output: not to a key's AUM, not to a company's total AUM for
    is_strategic, not to a branch ranking, not to presence/appearance.

R2  Loaded month. "A *loaded month* is a month that has at least one fact row." Taken
    literally: any row of business."规模明细", valid or not, makes its month loaded. So a
    month holding only rejected rows IS a loaded month, with all its consequences: every
    key that appeared earlier is absent in it (on_missing applies: suspended or closed),
    `disappeared` fires for keys present in the previous loaded month, it can be a year's
    reference month (then every annual flag of that year is false, barring a threshold
    <= 0, see R9), and it gets snapshot rows (see R14). Rationale: the definition is
    given in terms of fact rows before, and independently of, the definition of a
    contract; a load whose every row was rejected is still a load the CLI reports.

R3  NULL AUM. A valid row whose 期末资产规模 is NULL still makes its key *present* that
    month (it is one of "its 规模明细 rows of that month"). For the SUM it counts as 0
    (SQL SUM ignores NULLs; a key whose rows are all NULL gets 0 rather than NULL, since
    aum_balance is a number and "正常 when month AUM > 0, else 停缴" gives 停缴 either way).

R4  Reference month. "the last loaded month before January 1 of the year; if none, the
    first loaded month of the year." Loaded months are global (all companies, R2). No
    recency limit: if the loaded months are 2023-05 and 2025-03, 2025's reference month
    is 2023-05 (the last loaded month before 2025-01-01, even though 2024 has none) and
    2023's is 2023-05 (none before it; first of the year). Reference months are computed
    for every year that has a loaded month; other years never need one.

R5  is_strategic, total. "the company's total AUM at the reference month ≥
    strategic_threshold": the SUM of the company's valid facts in the reference month
    over all its plans, product lines and branches (NULL branch included). A company with
    no valid fact in the reference month has total 0 (so it is strategic by threshold
    only if the threshold is <= 0).

R6  is_strategic, branch ranking AUM. "the company is in the top whitelist_top_n by AUM of
    its branch": within branch b the companies are ranked by their AUM *in branch b* (the
    SUM of their valid reference-month rows whose 机构代码 = b), not by their total AUM.
    (rules: `top_n: {field: 期末资产规模, within: 机构代码}` partitions the field by
    branch.)

R7  is_strategic, company in several branches. A company with reference-month rows in
    several branches is ranked in each of them (with its AUM there, R6) and is strategic
    if it is in the top N of ANY of them (DESIGN: "A finer status shown on a coarser row
    is the bool_or of its keys"; (company, branch) is finer than company).

R8  is_strategic, ties at place N. Standard competition ranking (SQL rank()): a company is
    in the top N of a branch iff fewer than N companies of that branch have a strictly
    larger AUM there. So all companies tied at place N are in (a branch may yield more
    than N). Any tie-break by row order would make the flag depend on something other
    than the facts ("History is a pure function of the facts"); dense ranking would
    let arbitrarily many companies in. N <= 0 puts nobody in by ranking.

R9  is_strategic, who is ranked. Every company with at least one valid reference-month
    row in branch b is ranked in b, whatever its AUM there (0 or negative included: the
    text has no floor, so the only company of a branch is "in the top 10" even at AUM 0).

R10 is_strategic, NULL branch. A row with a NULL 机构代码 has no branch: it counts for the
    company's total (R5) but takes part in no branch ranking. Companies with NULL branch
    are NOT ranked together as if NULL were a branch ("its branch" does not exist; lumping
    every branchless company into one pseudo-branch would make them strategic by
    accident).

R11 is_existing. "the company had AUM > 0 in that product line at the reference month":
    the SUM over all the (company, product line)'s plans of the valid reference-month
    rows is > 0. It is a property of the (company, product line) pair, so a plan that did
    not exist at the reference month still gets is_existing = true on its versions and
    snapshot rows if a sibling plan of the pair had AUM > 0 then.

R12 SCD state of an absent month under `suspend`. "(contract_status, is_strategic,
    is_existing, status_year)" of a key absent in loaded month m (after its first
    appearance) is (停缴, is_strategic(company, year(m)), is_existing(pair, year(m)),
    year(m)): only the status is forced; the annual flags are those of m's year (they are
    decided at the year's reference month, independent of presence in m), status_year is
    m's year. So a suspension that crosses January 1 opens a new version.

R13 `close`. "the version ends; a later reappearance opens a new one": the open version's
    valid_to becomes the month-end of the first loaded month in which the key is absent
    (half-open: it still covers non-loaded months before it); no version covers the
    loaded months in which the key is absent; a reappearance opens a new version at its
    month-end even when its state equals the closed one. A key absent at the last loaded
    month has no current (9999-12-31) version.

R14 Snapshot months. Snapshots are modelled for loaded months only (the months the hook
    runs for). A non-loaded month may be covered by a version, but no snapshot rows are
    produced for it here.

R15 Snapshot population and plan_count. Plan table: the contract keys with a version
    covering m (valid_from <= month-end(m) < valid_to). Business table: the (company,
    product line) pairs with at least one such key. "plan_count the distinct plans
    covering m" = the number of distinct plan codes of the pair with a version covering
    m, so under `suspend` a plan absent in m (its 停缴 version covers m) is counted.

R16 aum_balance. "the SUM of m's facts" at the row's own key; an absent but covered key
    (or pair) has aum_balance 0.00. Quantized to 2 places.

R17 is_churned at a covered month without facts. "`is_churned` means *this plan*
    disappeared since the previous loaded month or its own month AUM is 0". A covered key
    with no facts in m has month AUM 0 (R16: the row shows aum_balance 0.00), so it IS
    churned - in every such month, not just the first one after it disappeared. Same at
    the pair level in the business table.

R18 is_churned, comparison. DESIGN says "month AUM = 0"; rules/statuses.yml says `le 0`
    and explains why ("a negative AUM is a data error, and such a customer is not active
    either"). Chosen: AUM <= 0 (CHURN_ON_NEGATIVE_AUM = True below). Against the brief's
    general "follow DESIGN where YAML and DESIGN disagree", because DESIGN itself says the
    statuses come "from the rules" and only summarises them; with "= 0" a negative-AUM key
    would be 停缴 (not active) and yet not churned. Flip the constant for the "= 0" reading.

R19 `disappeared`. "disappeared since the previous loaded month": the row's key had valid
    facts in the loaded month immediately before m (globally, R2; non-loaded months in
    between are skipped) and has none in m. False in the first loaded month.

R20 `first_appearance` / is_new_arrival: m is the first loaded month in which the row's
    key has valid facts. A reappearance (after suspend or close) is not a first
    appearance. Business table: the pair's first month with facts of any of its plans.

R21 Events (exists_in_year). Matched on (company_id, product_line_code) only; the event's
    plan_code is ignored and may be NULL. An event with a NULL company, product line or
    上报月份 matches nothing. "a record in the same calendar year with 上报月份 ≤ m's
    month-end": year(上报月份) == year(m) and 上报月份 <= month-end(m) (so a report dated
    on any day of m counts for m). The same pair-level value is written on every plan row
    of the pair (the rules pin product_line for events).

R22 is_new = is_winning_this_year AND NOT is_existing, both at (company, product line)
    for both tables (winning is pinned to product line, is_existing to the pair), so the
    plan rows of a pair carry the pair's value.

R23 Annual flags on snapshot rows: is_strategic of the company and is_existing of the pair
    for year(m). These are exactly the flags of the version(s) covering m, so "bool_or" over
    the covered keys of a business row changes nothing.

R24 Month dates. Any day names its month; every stored date is that month's last day;
    the open end is 9999-12-31. status_year is the calendar year of the loaded month.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

ACTIVE = "正常"
SUSPENDED = "停缴"
OPEN_END = date(9999, 12, 31)
CENT = Decimal("0.01")
ZERO = Decimal(0)

# R18: is_churned fires on month AUM <= 0 (rules/statuses.yml); False means "= 0" only.
CHURN_ON_NEGATIVE_AUM = True


@dataclass(frozen=True)
class FactRow:  # one row of business."规模明细"
    month: date  # "月度": any day of a month names that month
    company_id: str | None
    plan_code: str | None  # "计划代码"
    product_line_code: str | None  # "产品线代码"
    branch_code: str | None  # "机构代码" (branch)
    aum: Decimal | None  # "期末资产规模" month-end AUM, numeric(20,2)


@dataclass(frozen=True)
class EventRow:  # one row of customer."当年中标" (award) or customer."当年流失" (loss)
    company_id: str | None
    plan_code: str | None
    product_line_code: str | None
    reported: date | None  # "上报月份"


@dataclass(frozen=True)
class World:
    facts: tuple[FactRow, ...]
    awards: tuple[EventRow, ...]
    losses: tuple[EventRow, ...]
    companies: frozenset[str]  # company_ids of customer."年金客户"
    product_lines: dict[str, str] = field(hash=False)  # mapping."产品线": code -> name
    strategic_threshold: Decimal = Decimal(500000000)
    whitelist_top_n: int = 10
    on_missing: str = "suspend"  # or "close"


# --------------------------------------------------------------------------- memo
# Pure speed-up, no semantics: every helper below is a pure function of (world, args).
# The memo holds one world at a time (compared by identity) and is dropped when another
# world comes in. World is frozen; product_lines is treated as read-only and only its
# names are read, never memoized.
_MEMO: dict = {"world": None, "values": {}}


def _memo(fn):
    def wrapper(world, *args):
        if _MEMO["world"] is not world:
            _MEMO["world"] = world
            _MEMO["values"] = {}
        k = (fn.__name__, *args)
        values = _MEMO["values"]
        if k not in values:
            values[k] = fn(world, *args)
        return values[k]

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# --------------------------------------------------------------------------- basics


def month_end(d: date) -> date:
    """ "Every function takes a `date`; any day of a month names that month. ...
    Month-end dates are stored (`valid_from`, `valid_to`, `snapshot_month`)." (R24)"""
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def _q(x: Decimal) -> Decimal:
    """aum_balance is numeric(20,2): quantize to cents."""
    return Decimal(x).quantize(CENT, rounding=ROUND_HALF_UP)


def is_valid(world: World, r: FactRow) -> bool:
    """ "Rows with a NULL key part, or whose product line / company is unknown to the
    mapping tables, are not contracts" (R1)."""
    return (
        r.company_id is not None
        and r.plan_code is not None
        and r.product_line_code is not None
        and all(part.strip(" \t\r\n") for part in (r.company_id, r.plan_code, r.product_line_code))
        and r.company_id in world.companies
        and r.product_line_code in world.product_lines
    )


@_memo
def valid_facts(world: World) -> list[FactRow]:
    """The rows that are contracts (R1)."""
    return [r for r in world.facts if is_valid(world, r)]


def _key(r: FactRow) -> tuple[str, str, str]:
    """ "Key = `(company_id, plan_code, product_line_code)`.\""""
    return (r.company_id, r.plan_code, r.product_line_code)


def _pair(r: FactRow) -> tuple[str, str]:
    return (r.company_id, r.product_line_code)


def _aum(r: FactRow) -> Decimal:
    """NULL AUM counts as 0 in a SUM (R3)."""
    return ZERO if r.aum is None else Decimal(r.aum)


# --------------------------------------------------------------------------- months


def loaded_months(world: World) -> list[date]:
    """ "A *loaded month* is a month that has at least one fact row." Any row, valid or
    not (R2). Returned as sorted month-end dates."""
    return list(_loaded_months(world))


@_memo
def _loaded_months(world: World) -> tuple[date, ...]:
    return tuple(sorted({month_end(r.month) for r in world.facts}))


@_memo
def previous_loaded_month(world: World, m: date) -> date | None:
    """ "disappeared since the previous loaded month": the loaded month just before m (R19)."""
    before = [x for x in loaded_months(world) if x < month_end(m)]
    return before[-1] if before else None


@_memo
def reference_month(world: World, year: int) -> date | None:
    """ "Reference month: the last loaded month before January 1 of the year; if none, the
    first loaded month of the year." (R4)"""
    lm = loaded_months(world)
    before = [m for m in lm if m < date(year, 1, 1)]
    if before:
        return before[-1]
    in_year = [m for m in lm if m.year == year]
    return in_year[0] if in_year else None


def reference_months(world: World) -> dict[int, date]:
    """Reference month of every year that has a loaded month (R4)."""
    return {y: reference_month(world, y) for y in sorted({m.year for m in loaded_months(world)})}


# --------------------------------------------------------------------------- facts per month


@_memo
def facts_in(world: World, m: date) -> list[FactRow]:
    """ "A key's facts for a month are all its `规模明细` rows of that month (one per
    portfolio)" - the valid rows of month m."""
    me = month_end(m)
    return [r for r in valid_facts(world) if month_end(r.month) == me]


def key_present(world: World, key: tuple, m: date) -> bool:
    """The key has at least one (valid) fact row in m."""
    return any(_key(r) == key for r in facts_in(world, m))


def pair_present(world: World, pair: tuple, m: date) -> bool:
    return any(_pair(r) == pair for r in facts_in(world, m))


def key_aum(world: World, key: tuple, m: date) -> Decimal:
    """ "AUM is their SUM." 0 when the key has no facts in m (R3, R16)."""
    return sum((_aum(r) for r in facts_in(world, m) if _key(r) == key), ZERO)


def pair_aum(world: World, pair: tuple, m: date) -> Decimal:
    """aum_balance of a business row: "the SUM of m's facts" of the pair (R16)."""
    return sum((_aum(r) for r in facts_in(world, m) if _pair(r) == pair), ZERO)


@_memo
def first_month_of_key(world: World, key: tuple) -> date | None:
    ms = [month_end(r.month) for r in valid_facts(world) if _key(r) == key]
    return min(ms) if ms else None


@_memo
def first_month_of_pair(world: World, pair: tuple) -> date | None:
    ms = [month_end(r.month) for r in valid_facts(world) if _pair(r) == pair]
    return min(ms) if ms else None


# --------------------------------------------------------------------------- annual flags


def company_total_aum(world: World, company: str, m: date) -> Decimal:
    """ "the company's total AUM at the reference month" - all its valid rows of m (R5)."""
    return sum((_aum(r) for r in facts_in(world, m) if r.company_id == company), ZERO)


@_memo
def in_branch_top_n(world: World, company: str, m: date) -> bool:
    """ "or the company is in the top `whitelist_top_n` (10) by AUM of its branch".
    Ranked per branch by the company's AUM in that branch (R6), in any branch it has
    rows in (R7), rank() semantics for ties (R8), everyone with a row ranked (R9),
    NULL branch not a branch (R10)."""
    n = world.whitelist_top_n
    if n <= 0:
        return False
    by_branch: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for r in facts_in(world, m):
        if r.branch_code is None:
            continue
        by_branch[r.branch_code][r.company_id] += _aum(r)
    for companies in by_branch.values():
        if company in companies:
            mine = companies[company]
            larger = sum(1 for v in companies.values() if v > mine)
            if larger < n:
                return True
    return False


@_memo
def is_strategic(world: World, company: str, year: int) -> bool:
    """ "`is_strategic` — the company's total AUM at the reference month ≥
    `strategic_threshold` (500000000) or the company is in the top `whitelist_top_n` (10)
    by AUM of its branch." Decided at the year's reference month."""
    ref = reference_month(world, year)
    if ref is None:
        return False
    return company_total_aum(world, company, ref) >= Decimal(
        world.strategic_threshold
    ) or in_branch_top_n(world, company, ref)


@_memo
def is_existing(world: World, pair: tuple, year: int) -> bool:
    """ "`is_existing` — the company had AUM > 0 in that product line at the reference
    month." (R11)"""
    ref = reference_month(world, year)
    if ref is None:
        return False
    return pair_aum(world, pair, ref) > 0


# --------------------------------------------------------------------------- SCD type 2


def contract_status(aum: Decimal) -> str:
    """ "**Contract status** comes from the rules (default: 正常 when month AUM > 0, else 停缴)."""
    return ACTIVE if aum > 0 else SUSPENDED


def key_state(world: World, key: tuple, m: date):
    """ "The tracked state of a key at a loaded month is (contract_status, is_strategic,
    is_existing, status_year)." ... "A key absent in a loaded month after it appeared is
    handled by the rule `on_missing`: `suspend` (default: state 停缴) or `close` (the
    version ends ...)". Returns None for "no version" (absent under close) (R12, R13)."""
    company, _plan, pl = key
    y = m.year
    flags = (is_strategic(world, company, y), is_existing(world, (company, pl), y), y)
    if key_present(world, key, m):
        return (contract_status(key_aum(world, key, m)), *flags)
    if world.on_missing == "suspend":
        return (SUSPENDED, *flags)
    if world.on_missing == "close":
        return None
    raise ValueError(f"unknown on_missing {world.on_missing!r}")


@_memo
def all_keys(world: World) -> set[tuple]:
    return {_key(r) for r in valid_facts(world)}


@_memo
def key_versions(world: World, key: tuple) -> list[tuple[date, date, tuple]]:
    """ "History is the run-length encoding of that state over the loaded months from the
    key's first appearance: a version starts at the month-end of its first month
    (`valid_from`) and ends at the `valid_from` of the next version (`valid_to`,
    half-open); the current version has `valid_to = '9999-12-31'`." Under `close` an
    absence ends the version at that month's month-end and a reappearance opens a new
    one (R13). Returns [(valid_from, valid_to, state)]."""
    first = first_month_of_key(world, key)
    versions: list[list] = []  # [valid_from, valid_to or None, state]
    open_v = None
    for m in loaded_months(world):
        if m < first:
            continue
        st = key_state(world, key, m)
        if st is None:  # close: end the open version, if any
            if open_v is not None:
                open_v[1] = m
                open_v = None
            continue
        if open_v is not None and open_v[2] == st:
            continue  # same state: the run goes on
        if open_v is not None:
            open_v[1] = m  # ends at the valid_from of the next version
        open_v = [m, None, st]
        versions.append(open_v)
    return [(vf, OPEN_END if vt is None else vt, st) for vf, vt, st in versions]


def contract_history(world: World) -> set[tuple]:
    """customer.customer_plan_contract: "one row per version of each customer-plan
    contract". Rows (company_id, plan_code, product_line_code, product_line_name,
    valid_from, valid_to, contract_status, is_strategic, is_existing, status_year)."""
    out = set()
    for key in all_keys(world):
        company, plan, pl = key
        for vf, vt, (status, strat, exist, year) in key_versions(world, key):
            out.add(
                (company, plan, pl, world.product_lines[pl], vf, vt, status, strat, exist, year)
            )
    return out


def covering_version(world: World, key: tuple, m: date):
    """ "with a contract version covering m": valid_from <= month-end(m) < valid_to."""
    me = month_end(m)
    for vf, vt, st in key_versions(world, key):
        if vf <= me < vt:
            return (vf, vt, st)
    return None


@_memo
def covered_keys(world: World, m: date) -> set[tuple]:
    return {k for k in all_keys(world) if covering_version(world, k, m) is not None}


# --------------------------------------------------------------------------- monthly statuses


def exists_in_year(events: tuple[EventRow, ...], pair: tuple, m: date) -> bool:
    """ "`exists_in_year` means a record in the same calendar year with `上报月份` ≤ m's
    month-end." "an events condition matches on the keys its source names (中标/流失 on
    company and product line)" (R21)."""
    me = month_end(m)
    company, pl = pair
    return any(
        e.company_id is not None
        and e.product_line_code is not None
        and e.reported is not None
        and e.company_id == company
        and e.product_line_code == pl
        and e.reported.year == me.year
        and e.reported <= me
        for e in events
    )


def _aum_not_active(aum: Decimal) -> bool:
    """ "OR month AUM = 0" / rules: `field_compare: {op: le, value: 0}` (R18)."""
    return aum <= 0 if CHURN_ON_NEGATIVE_AUM else aum == 0


def key_is_churned(world: World, key: tuple, m: date) -> bool:
    """ "in the plan table ... `is_churned` means *this plan* disappeared since the previous
    loaded month or its own month AUM is 0" (R17, R19)."""
    prev = previous_loaded_month(world, m)
    disappeared = (
        prev is not None and key_present(world, key, prev) and not key_present(world, key, m)
    )
    return disappeared or _aum_not_active(key_aum(world, key, m))


def pair_is_churned(world: World, pair: tuple, m: date) -> bool:
    """ "A monthly status is evaluated at the key of the row it is written on: (company,
    product line) in the business table" - is_churned at the pair (R17, R19)."""
    prev = previous_loaded_month(world, m)
    disappeared = (
        prev is not None and pair_present(world, pair, prev) and not pair_present(world, pair, m)
    )
    return disappeared or _aum_not_active(pair_aum(world, pair, m))


def _common_flags(world: World, company: str, pl: str, m: date) -> tuple:
    """is_strategic, is_existing, is_new, is_winning_this_year, is_churned_this_year:
    the statuses whose rules pin a coarser key than the plan (R21, R22, R23).
    "`is_new` (is_winning_this_year AND NOT is_existing)"."""
    y = month_end(m).year
    strat = is_strategic(world, company, y)
    exist = is_existing(world, (company, pl), y)
    win = exists_in_year(world.awards, (company, pl), m)
    lost = exists_in_year(world.losses, (company, pl), m)
    return strat, exist, (win and not exist), win, lost


def plan_snapshot(world: World) -> set[tuple]:
    """customer.fct_customer_plan_monthly_status: "the population is ... for the plan
    table, the contract keys ... with a contract version covering m". Rows
    (snapshot_month, company_id, plan_code, product_line_code, product_line_name,
    aum_balance, is_strategic, is_existing, is_new, is_winning_this_year,
    is_churned_this_year, is_new_arrival, is_churned). "in the plan table
    `is_new_arrival` means *this plan* appears for the first time" (R14-R20)."""
    out = set()
    for m in loaded_months(world):
        for key in covered_keys(world, m):
            company, plan, pl = key
            strat, exist, new, win, lost = _common_flags(world, company, pl, m)
            out.add(
                (
                    m,
                    company,
                    plan,
                    pl,
                    world.product_lines[pl],
                    _q(key_aum(world, key, m)),
                    strat,
                    exist,
                    new,
                    win,
                    lost,
                    first_month_of_key(world, key) == m,
                    key_is_churned(world, key, m),
                )
            )
    return out


def business_snapshot(world: World) -> set[tuple]:
    """customer.fct_customer_business_monthly_status: "the population is the (company,
    product line) pairs ... with a contract version covering m ... `aum_balance` is the
    SUM of m's facts; `plan_count` the distinct plans covering m." Rows (snapshot_month,
    company_id, product_line_code, product_line_name, aum_balance, plan_count,
    is_strategic, is_existing, is_new, is_winning_this_year, is_churned_this_year,
    is_new_arrival, is_churned) (R14-R20)."""
    out = set()
    for m in loaded_months(world):
        plans_by_pair: dict[tuple, set[str]] = defaultdict(set)
        for company, plan, pl in covered_keys(world, m):
            plans_by_pair[(company, pl)].add(plan)
        for pair, plans in plans_by_pair.items():
            company, pl = pair
            strat, exist, new, win, lost = _common_flags(world, company, pl, m)
            out.add(
                (
                    m,
                    company,
                    pl,
                    world.product_lines[pl],
                    _q(pair_aum(world, pair, m)),
                    len(plans),
                    strat,
                    exist,
                    new,
                    win,
                    lost,
                    first_month_of_pair(world, pair) == m,
                    pair_is_churned(world, pair, m),
                )
            )
    return out
