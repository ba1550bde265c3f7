"""Synthetic data of an annuity business, for demos, tests and benchmarks.

`iter_months(spec)` yields one `DemoMonth` at a time (the monthly facts of
`business."规模明细"` plus the awards and losses reported that month), so a large run never
holds more than one month of rows: the state carried from month to month is per plan.
Everything comes from `random.Random` streams seeded by the spec, and is emitted in a fixed
order, so the same spec gives the same rows byte for byte (`fingerprint` checks that).

The business it simulates (rates are per month unless said otherwise):

* companies `C000001`… belong to one of 30 branches (1 % of the plans are serviced by
  another branch); 18 % are dormant at the start and open their first plan later (new
  customers), the others start with 1–4 plans; no company ever has more than 4 plans
  (`P000001A` … `P000001D`);
* each plan has one product line and 1–3 portfolios (`P000001A01` …); its AUM is lognormal
  (median ≈3 million; 0.2–0.4 % of the companies above the 500,000,000 strategic
  threshold) and follows a random walk, ×exp(N(0, 0.03)) plus contributions (0.05–0.8 %
  of AUM, in 60 % of the months); 期初资产规模 is the last reported 期末资产规模;
* ≈1 % of the plans are suspended (every portfolio at AUM 0, rows still present) for
  2–6 months, then reactivate; now and then a single portfolio of a plan sits at 0 while
  the others are positive;
* ≈0.5 % of the plans send no rows at all for 1–3 months, then reappear; ≈0.35 % end for
  good; new plans (≈3 % of the companies with room for one, ≈1.5 % of the dormant ones,
  opening in the month or up to 3 months later) outpace them, so the rows grow ≈1.35×
  over three years;
* awards (`当年中标`) for ≈2 % of all (company, product line) pairs a year, either for a
  running plan or for a new plan that appears in the award month or up to 3 months later;
  losses (`当年流失`) for ≈1 % a year, mostly reported for plans that then end;
* every third month a few bad rows: a NULL 计划代码, a NULL company_id, the unknown product
  line `PL999`, or a company unknown to `customer."年金客户"` (ids after the last company).

`load_customers`, `copy_month` and `delete_month` write it into a database at the base
schema; none of them commits: the caller owns the transaction (one per month, like an ETL).
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from cmdm_admin.errors import CmdmError

FACT_COLUMNS = (
    "月度",
    "业务类型",
    "计划代码",
    "company_id",
    "产品线代码",
    "组合代码",
    "期末资产规模",
    "期初资产规模",
    "供款",
    "机构代码",
    "机构名称",
)
EVENT_COLUMNS = ("company_id", "产品线代码", "计划代码", "上报月份")
CUSTOMER_COLUMNS = ("company_id", "客户名称")

FACT_TABLE = ("business", "规模明细")
CUSTOMER_TABLE = ("customer", "年金客户")
AWARD_TABLE = ("customer", "当年中标")
LOSS_TABLE = ("customer", "当年流失")

#: The product lines seeded by the base migration: (code, name = 业务类型, weight).
PRODUCT_LINES = (
    ("PL201", "企年投资", 30),
    ("PL202", "企年受托", 28),
    ("PL203", "职年受托", 12),
    ("PL204", "职年投资", 12),
    ("PL205", "养老保障", 18),
)
#: Product line code of the bad rows "unknown product line".
UNKNOWN_PRODUCT_LINE = "PL999"
#: Company total AUM from which a company is strategic (rules/ default).
STRATEGIC_THRESHOLD = Decimal(500_000_000)

# fmt: off
_BRANCH_CITIES = (
    "北京", "上海", "广东", "深圳", "江苏", "浙江", "山东", "天津", "重庆", "四川",
    "湖北", "湖南", "河南", "河北", "福建", "安徽", "辽宁", "陕西", "山西", "江西",
    "广西", "云南", "贵州", "吉林", "黑龙江", "甘肃", "内蒙古", "新疆", "宁波", "青岛",
)
# fmt: on
_BRANCH_WEIGHTS = (8, 8, 7, 5, 6, 6, 5, 3, 3, 4, 4, 3, 4, 3, 3, 3, 3, *[2] * 13)
#: (机构代码, 机构名称, weight): 30 branches, big ones hold more companies.
BRANCHES = tuple(
    (f"B{i:02d}", f"{city}分公司", weight)
    for i, (city, weight) in enumerate(zip(_BRANCH_CITIES, _BRANCH_WEIGHTS, strict=True), 1)
)

#: Kinds of bad rows, in the order a run guarantees them.
BAD_ROW_KINDS = ("null_plan", "null_company", "unknown_product_line", "unknown_company")

MAX_PLANS_PER_COMPANY = 4
PLAN_LETTERS = "ABCD"

# --- the simulated business (see the module docstring) ---------------------------------
_DORMANT_SHARE = 0.18
_INITIAL_PLANS_WEIGHTS = (45, 30, 15, 10)  # 1, 2, 3, 4 plans
_PORTFOLIO_WEIGHTS = (30, 35, 35)  # 1, 2, 3 portfolios
_AUM_LOG_MEDIAN = math.log(3_000_000)  # median plan AUM
_AUM_LOG_SIGMA = 1.72
_WALK_SIGMA = 0.03
_CONTRIBUTION_SHARE = 0.6  # months with a contribution
_INITIAL_SUSPENDED = 0.03
_P_END = 0.0035
_P_SUSPEND = 0.01
_P_ABSENT = 0.005
_P_PORTFOLIO_ZERO = 0.005
_P_NEW_PLAN = 0.031  # per active company with room for a plan
_P_WAKE = 0.015  # per dormant company
_P_OTHER_BRANCH = 0.01  # a plan serviced by another branch than its company's
_AWARDS_PER_PAIR_YEAR = 0.02
_P_AWARD_NEW_PLAN = 0.25
_LOSSES_PER_PAIR_YEAR = 0.01
_P_LOSS_ON_END = 0.5


@dataclass(frozen=True)
class DemoSpec:
    """What to generate: `companies` customers over `months` months from `start` (a 1st)."""

    companies: int = 2000
    months: int = 24
    seed: int = 7
    start: date = date(2024, 1, 1)

    def __post_init__(self) -> None:
        for name in ("companies", "months", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise CmdmError(f"demo spec: {name} must be an integer, got {value!r}")
        if self.companies < 1:
            raise CmdmError(f"demo spec: companies must be at least 1, got {self.companies}")
        if not 1 <= self.months <= 600:
            raise CmdmError(f"demo spec: months must be between 1 and 600, got {self.months}")
        if not isinstance(self.start, date) or isinstance(self.start, datetime):
            raise CmdmError(f"demo spec: start must be a date, got {self.start!r}")
        if self.start.day != 1:
            raise CmdmError(
                f"demo spec: start must be the 1st of a month, got {self.start.isoformat()}",
                hint=f"use {self.start.replace(day=1).isoformat()}",
            )


@dataclass(frozen=True)
class DemoMonth:
    """One month of generated input: facts, and the awards and losses reported in it."""

    month: date  # the 1st
    facts: list[tuple] = field(repr=False)  # FACT_COLUMNS order
    awards: list[tuple] = field(repr=False)  # EVENT_COLUMNS order, 上报月份 = month
    losses: list[tuple] = field(repr=False)


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The 1st of the month `months` after `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def company_id(number: int) -> str:
    return f"C{number:06d}"


def unknown_company_ids(spec: DemoSpec) -> list[str]:
    """Company ids that appear in bad fact rows but not in `customer."年金客户"`."""
    count = max(2, min(25, spec.companies // 1000))
    return [company_id(spec.companies + k) for k in range(1, count + 1)]


_NAME_BRANDS = "华信达通恒泰安盛鑫源宏远中联新创瑞丰嘉和永兴金海天润"
_NAME_TRADES = (
    "科技", "实业", "能源", "建设", "制造", "物流", "医药", "电子", "化工", "投资",
    "贸易", "电力", "钢铁", "汽车", "食品", "纺织", "通信", "建材", "环保", "软件",
)  # fmt: skip
_NAME_FORMS = ("有限公司", "股份有限公司", "集团有限公司")


def _rng(spec: DemoSpec, stream: str) -> random.Random:
    # A str seed is hashed with SHA-512: stable across runs and Python processes.
    return random.Random(f"cmdm-demo/{spec.seed}/{stream}")


def _company_table(spec: DemoSpec) -> list[tuple[str, str, int]]:
    """(company_id, 客户名称, branch index) of every known company, in id order."""
    rng = _rng(spec, "companies")
    branch_weights = [w for _, _, w in BRANCHES]
    branch_of = rng.choices(range(len(BRANCHES)), weights=branch_weights, k=spec.companies)
    used: set[str] = set()
    table = []
    for number, branch in enumerate(branch_of, start=1):
        city = BRANCHES[branch][1].removesuffix("分公司")
        name = ""
        for _ in range(5):
            a, b = rng.sample(_NAME_BRANDS, 2)
            name = f"{city}{a}{b}{rng.choice(_NAME_TRADES)}{rng.choice(_NAME_FORMS)}"
            if name not in used:
                break
        else:
            name = f"客户{number:06d}"
        used.add(name)
        table.append((company_id(number), name, branch))
    return table


def customers(spec: DemoSpec) -> list[tuple[str, str]]:
    """The rows of `customer."年金客户"`: (company_id, 客户名称), every company from the start."""
    return [(cid, name) for cid, name, _ in _company_table(spec)]


class _Company:
    __slots__ = ("branch", "cid", "dormant", "number", "plans")

    def __init__(self, number: int, cid: str, branch: int, dormant: bool) -> None:
        self.number = number
        self.cid = cid
        self.branch = branch
        self.dormant = dormant
        self.plans = 0  # plans ever opened, at most MAX_PLANS_PER_COMPANY


class _Portfolio:
    __slots__ = ("aum", "code", "last", "zero_left")

    def __init__(self, code: str, aum: float) -> None:
        self.code = code
        self.aum = aum  # latent AUM, kept through suspensions
        self.last = 0  # cents of the last reported 期末资产规模 (期初 of the next report)
        self.zero_left = 0  # months this portfolio alone stays at 0


class _Plan:
    __slots__ = (
        "absent_left",
        "branch_code",
        "branch_name",
        "business_type",
        "cid",
        "code",
        "end_at",
        "line",
        "portfolios",
        "suspended_left",
    )

    def __init__(self, code: str, cid: str, line: int, branch: int) -> None:
        self.code = code
        self.cid = cid
        self.line = PRODUCT_LINES[line][0]
        self.business_type = PRODUCT_LINES[line][1]
        self.branch_code, self.branch_name, _ = BRANCHES[branch]
        self.portfolios: list[_Portfolio] = []
        self.suspended_left = 0  # months left at AUM 0 (rows present)
        self.absent_left = 0  # months left without rows
        self.end_at: int | None = None  # month index from which it has no rows, for good


class _Generator:
    """The state carried from month to month: companies, plans, scheduled plans."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.rng = _rng(spec, "months")
        self.line_weights = [w for _, _, w in PRODUCT_LINES]
        rng = self.rng
        self.companies = [
            _Company(number, cid, branch, rng.random() < _DORMANT_SHARE)
            for number, (cid, _, branch) in enumerate(_company_table(spec), start=1)
        ]
        self.unknown = unknown_company_ids(spec)
        self.plans: dict[str, _Plan] = {}  # running plans, in opening order
        self.scheduled: dict[int, list[_Plan]] = {}  # month index -> plans opening then
        for company in self.companies:
            if company.dormant:
                continue
            (count,) = rng.choices((1, 2, 3, 4), weights=_INITIAL_PLANS_WEIGHTS)
            for _ in range(count):
                plan = self._open_plan(company)
                for portfolio in plan.portfolios:  # it ran before the first month
                    portfolio.last = round(portfolio.aum * 100)
                if rng.random() < _INITIAL_SUSPENDED:
                    plan.suspended_left = rng.randint(1, 5)
                self.plans[plan.code] = plan
        self.awards_per_month = spec.companies * len(PRODUCT_LINES) * _AWARDS_PER_PAIR_YEAR / 12
        self.losses_per_month = spec.companies * len(PRODUCT_LINES) * _LOSSES_PER_PAIR_YEAR / 12

    # -- helpers ------------------------------------------------------------------------

    def _open_plan(self, company: _Company) -> _Plan:
        rng = self.rng
        code = f"P{company.number:06d}{PLAN_LETTERS[company.plans]}"
        company.plans += 1
        (line,) = rng.choices(range(len(PRODUCT_LINES)), weights=self.line_weights)
        branch = company.branch
        if rng.random() < _P_OTHER_BRANCH:
            branch = rng.randrange(len(BRANCHES))
        plan = _Plan(code, company.cid, line, branch)
        total = math.exp(rng.gauss(_AUM_LOG_MEDIAN, _AUM_LOG_SIGMA))
        (count,) = rng.choices((1, 2, 3), weights=_PORTFOLIO_WEIGHTS)
        shares = [0.3 + rng.random() for _ in range(count)]
        scale = total / sum(shares)
        plan.portfolios = [
            _Portfolio(f"{code}{k:02d}", share * scale) for k, share in enumerate(shares, 1)
        ]
        return plan

    def _count(self, expected: float) -> int:
        """A random count with the given mean (its integer part, plus one by chance)."""
        whole = int(expected)
        return whole + (self.rng.random() < expected - whole)

    # -- one month ----------------------------------------------------------------------

    def month(self, t: int) -> DemoMonth:
        rng = self.rng
        month = add_months(self.spec.start, t)
        plans = self.plans
        awards: list[tuple] = []
        losses: list[tuple] = []
        seen: dict[str, set[str]] = {"awards": set(), "losses": set()}

        def report(kind: str, plan: _Plan) -> None:
            # At most one award (one loss) per plan and month.
            if plan.code not in seen[kind]:
                seen[kind].add(plan.code)
                (awards if kind == "awards" else losses).append(
                    (plan.cid, plan.line, plan.code, month)
                )

        for plan in self.scheduled.pop(t, ()):
            plans[plan.code] = plan

        # Changes of the running plans: end, suspension, disappearance, one portfolio at 0.
        if t > 0:
            for plan in list(plans.values()):
                if plan.end_at is not None:
                    if plan.end_at <= t:
                        del plans[plan.code]
                    continue
                if plan.suspended_left or plan.absent_left:
                    continue
                u = rng.random()
                if u < _P_END:
                    plan.end_at = t + rng.choice((0, 0, 1, 2))
                    if rng.random() < _P_LOSS_ON_END:
                        report("losses", plan)
                    if plan.end_at == t:
                        del plans[plan.code]
                elif u < _P_END + _P_SUSPEND:
                    plan.suspended_left = rng.randint(2, 6)
                elif u < _P_END + _P_SUSPEND + _P_ABSENT:
                    plan.absent_left = rng.randint(1, 3)
                elif u < _P_END + _P_SUSPEND + _P_ABSENT + _P_PORTFOLIO_ZERO:
                    portfolios = plan.portfolios
                    if len(portfolios) > 1 and not any(p.zero_left for p in portfolios):
                        rng.choice(portfolios).zero_left = rng.randint(1, 6)

        # New plans, opening now or within 3 months; some won in an award reported now.
        for company in self.companies:
            if company.dormant:
                if rng.random() >= _P_WAKE:
                    continue
                company.dormant = False
            elif company.plans >= MAX_PLANS_PER_COMPANY or rng.random() >= _P_NEW_PLAN:
                continue
            plan = self._open_plan(company)
            opens = t + rng.choice((0, 0, 0, 1, 2, 3))
            if opens == t:
                plans[plan.code] = plan
            else:
                self.scheduled.setdefault(opens, []).append(plan)
            if rng.random() < _P_AWARD_NEW_PLAN:
                report("awards", plan)

        # Facts of every plan with rows this month.
        facts: list[tuple] = []
        append = facts.append
        gauss, uniform, random_ = rng.gauss, rng.uniform, rng.random
        exp = math.exp
        zero = Decimal("0.00")
        reported: list[_Plan] = []
        for plan in plans.values():
            if plan.absent_left:
                plan.absent_left -= 1
                continue
            reported.append(plan)
            head = (month, plan.business_type, plan.code, plan.cid, plan.line)
            tail = (plan.branch_code, plan.branch_name)
            suspended = plan.suspended_left > 0
            for pf in plan.portfolios:
                begin = pf.last
                if suspended or pf.zero_left:
                    if pf.zero_left and not suspended:
                        pf.zero_left -= 1
                    pf.last = 0
                    append((*head, pf.code, zero, Decimal(begin).scaleb(-2), zero, *tail))
                    continue
                contribution = 0
                if random_() < _CONTRIBUTION_SHARE:
                    contribution = round(pf.aum * uniform(0.05, 0.8))  # 0.05–0.8 % of AUM, in cents
                pf.aum = pf.aum * exp(gauss(0.0, _WALK_SIGMA)) + contribution / 100
                end = round(pf.aum * 100)
                pf.last = end
                append(
                    (
                        *head,
                        pf.code,
                        Decimal(end).scaleb(-2),
                        Decimal(begin).scaleb(-2),
                        Decimal(contribution).scaleb(-2),
                        *tail,
                    )
                )
            if suspended:
                plan.suspended_left -= 1

        # Awards for running plans, and losses reported without the plan ending.
        if reported:
            new_awards = len(awards)
            for _ in range(self._count(max(0.0, self.awards_per_month - new_awards))):
                report("awards", rng.choice(reported))
            for _ in range(self._count(max(0.0, self.losses_per_month - len(losses)))):
                report("losses", rng.choice(reported))

        if t % 3 == 2:
            self._bad_rows(t, month, facts)
        return DemoMonth(month=month, facts=facts, awards=awards, losses=losses)

    def _bad_rows(self, t: int, month: date, facts: list[tuple]) -> None:
        """1–3 rows that are not contracts; each kind comes in turn, so every run of
        3 months or more has some and a run of 12 months or more has every kind."""
        rng = self.rng
        count = rng.randint(1, 3)
        kinds = [BAD_ROW_KINDS[(t // 3) % len(BAD_ROW_KINDS)]]
        kinds += rng.choices(BAD_ROW_KINDS, k=count - 1)
        good = len(facts)
        for kind in kinds:
            if kind == "unknown_company" or not good:
                number = rng.randrange(len(self.unknown))
                cid = self.unknown[number]
                code = f"P{self.spec.companies + number + 1:06d}A"
                code_, name, _ = BRANCHES[rng.randrange(len(BRANCHES))]
                line, business_type, _ = PRODUCT_LINES[rng.randrange(len(PRODUCT_LINES))]
                aum = Decimal(round(math.exp(rng.gauss(_AUM_LOG_MEDIAN, 1.0)) * 100)).scaleb(-2)
                row = [month, business_type, code, cid, line, f"{code}01", aum, aum]
                row += [Decimal("0.00"), code_, name]
            else:
                row = list(facts[rng.randrange(good)])
            if kind == "null_plan":
                row[2] = None
            elif kind == "null_company":
                row[3] = None
            elif kind == "unknown_product_line":
                row[4] = UNKNOWN_PRODUCT_LINE
            facts.append(tuple(row))


def iter_months(spec: DemoSpec) -> Iterator[DemoMonth]:
    """The months of the spec, in order, generated lazily one at a time."""
    generator = _Generator(spec)
    for t in range(spec.months):
        yield generator.month(t)


def _lines(rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    for row in rows:
        yield ("\t".join(r"\N" if v is None else str(v) for v in row) + "\n").encode()


def fingerprint(spec: DemoSpec) -> str:
    """sha256 over the customers and every month's facts, awards and losses."""
    digest = hashlib.sha256()
    digest.update(b"customers\n")
    for line in _lines(customers(spec)):
        digest.update(line)
    for demo_month in iter_months(spec):
        for part in ("facts", "awards", "losses"):
            digest.update(f"{demo_month.month.isoformat()} {part}\n".encode())
            for line in _lines(getattr(demo_month, part)):
                digest.update(line)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# Loading (psycopg 3). Nothing here commits: the caller owns the transaction.
# --------------------------------------------------------------------------------------


def _columns(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def load_customers(conn: psycopg.Connection, spec: DemoSpec) -> int:
    """Insert the spec's customers into `customer."年金客户"` (existing ids are left as they
    are); returns the rows inserted."""
    rows = customers(spec)
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}) "
        "SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING"
    ).format(table=sql.Identifier(*CUSTOMER_TABLE), columns=_columns(CUSTOMER_COLUMNS))
    with conn.cursor() as cur:
        cur.execute(statement, ([r[0] for r in rows], [r[1] for r in rows]))
        return cur.rowcount


def _insert_events(cur: psycopg.Cursor, table: tuple[str, str], rows: list[tuple]) -> int:
    """Insert event rows not already present (same four values), so reloading a month
    does not duplicate its awards and losses."""
    if not rows:
        return 0
    columns = [sql.Identifier(c) for c in EVENT_COLUMNS]
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}) "
        "SELECT DISTINCT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::date[]) "
        "AS u ({columns}) "
        "WHERE NOT EXISTS (SELECT FROM {table} AS e WHERE {match})"
    ).format(
        table=sql.Identifier(*table),
        columns=sql.SQL(", ").join(columns),
        match=sql.SQL(" AND ").join(
            sql.SQL("e.{c} IS NOT DISTINCT FROM u.{c}").format(c=c) for c in columns
        ),
    )
    cur.execute(statement, [list(column) for column in zip(*rows, strict=True)])
    return cur.rowcount


def copy_month(conn: psycopg.Connection, demo_month: DemoMonth) -> int:
    """COPY the month's facts into `business."规模明细"`, then add its awards and losses
    (those not already there). Does not commit. Returns the fact rows copied."""
    statement = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
        table=sql.Identifier(*FACT_TABLE), columns=_columns(FACT_COLUMNS)
    )
    with conn.cursor() as cur:
        with cur.copy(statement) as copy:
            for row in demo_month.facts:
                copy.write_row(row)
        _insert_events(cur, AWARD_TABLE, demo_month.awards)
        _insert_events(cur, LOSS_TABLE, demo_month.losses)
    return len(demo_month.facts)


def delete_month(conn: psycopg.Connection, month: date) -> int:
    """Delete the facts of `month`'s month (any day of it names it) from
    `business."规模明细"`; awards and losses stay. Does not commit. Returns the rows deleted."""
    if not isinstance(month, date):
        raise CmdmError(f"delete_month: month must be a date, got {month!r}")
    first = date(month.year, month.month, 1)
    statement = sql.SQL("DELETE FROM {table} WHERE {m} >= %s AND {m} < %s").format(
        table=sql.Identifier(*FACT_TABLE), m=sql.Identifier("月度")
    )
    with conn.cursor() as cur:
        cur.execute(statement, (first, add_months(first, 1)))
        return cur.rowcount


@dataclass(frozen=True)
class LoadedMonth:
    month: date
    facts: int
    replaced: int  # fact rows of an earlier load of the same month, deleted first


def load_demo(
    conn: psycopg.Connection,
    spec: DemoSpec,
    on_month: Callable[[LoadedMonth], None] | None = None,
) -> list[LoadedMonth]:
    """Load the customers, then every month in order, as an ETL does: one transaction per
    month. A month loaded before is replaced (its facts deleted, then copied again), so
    loading the same spec twice is safe."""
    loaded = []
    with conn.transaction():
        load_customers(conn, spec)
    for demo_month in iter_months(spec):
        with conn.transaction():
            replaced = delete_month(conn, demo_month.month)
            facts = copy_month(conn, demo_month)
        result = LoadedMonth(demo_month.month, facts, replaced)
        loaded.append(result)
        if on_month is not None:
            on_month(result)
    return loaded


def write_csv(spec: DemoSpec, folder: Path) -> list[Path]:
    """Write customers, then facts, awards and losses per month, as CSV files with a
    header row; returns the files written."""
    if folder.exists() and not folder.is_dir():
        raise CmdmError(
            f"{folder} is a file, not a folder", hint="pass --out a new or existing folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _write_csv_files(spec, folder)
    except OSError as exc:
        raise CmdmError(
            f"cannot write the CSV files into {folder}: {exc.strerror or exc}",
            hint="pass --out a folder you can write to",
        ) from exc


def _write_csv_files(spec: DemoSpec, folder: Path) -> list[Path]:

    def write(name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    files = [write("年金客户.csv", CUSTOMER_COLUMNS, customers(spec))]
    for demo_month in iter_months(spec):
        stem = f"{demo_month.month:%Y-%m}"
        files.append(write(f"规模明细_{stem}.csv", FACT_COLUMNS, demo_month.facts))
        files.append(write(f"当年中标_{stem}.csv", EVENT_COLUMNS, demo_month.awards))
        files.append(write(f"当年流失_{stem}.csv", EVENT_COLUMNS, demo_month.losses))
    return files
