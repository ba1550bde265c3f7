"""Why is this flag true? (DESIGN §4): every status of one customer and month, the rule that
decided it with the truth of each of its nodes, and the evidence rows behind it.

The rules are the ones deployed in the database (the newest `cmdm.rule_deployment` row),
else the checkout's `rules/`. Each node of each monthly rule is compiled with the same
`MonthlyScope` the snapshot refresh uses (`render.snapshot_context`), over rows built the
way the refresh builds them (docs/snapshots.md), for this company only, in one query: so
the root of a rule evaluates to the stored snapshot value whenever the snapshot is current.
Annual statuses are read from the year's decision (customer.annual_reference and the
customer.annual_*_status tables): the reference month, the value and the evidence (sums,
top_n ranks) are the rows the sync decided from, never a second computation that could
drift from it. A key without a decided row had no facts at the reference month: its value
is the rule's over no facts, compiled as the sync compiles it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cmdm_admin.compiler import (
    FactScope,
    MonthlyScope,
    MonthRow,
    compile_rule,
    ident,
    qualified,
    source_key_columns,
    text_literal,
)
from cmdm_admin.errors import CmdmError
from cmdm_admin.loader import load_rules, load_rules_from_texts
from cmdm_admin.periods import label, month_end
from cmdm_admin.project import current_project
from cmdm_admin.render import PORTFOLIO_COLUMN, ROW_GRAINS, annual_context
from cmdm_admin.rules import GRAIN_KEYS, ConfigRef, Rule, RuleSet

_OPS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "ne": "≠"}
_ROW_FLAGS = ("_present", "_present_before", "_seen_before")
_CONTRACT = "customer.customer_plan_contract"
_SNAPSHOT_TABLES = {
    "business": "customer.fct_customer_business_monthly_status",
    "plan": "customer.fct_customer_plan_monthly_status",
}


class ExplainError(CmdmError):
    """Nothing to explain: an unknown company, a month without facts, no contract."""


@dataclass(frozen=True)
class RulesUsed:
    origin: str  # 'deployed' or 'checkout'
    revision: str | None
    sha256: str | None
    ruleset: RuleSet


@dataclass
class Node:
    """One node of a rule tree: its path (as in the YAML), depth, what it tests, whether it
    holds for the row (None: not evaluated here) and what the row had (`detail`)."""

    path: str
    depth: int
    kind: str
    label: str
    value: bool | None
    detail: str | None = None


@dataclass
class StatusExplanation:
    status: str
    grain: str
    annual: bool
    description: str
    key: dict[str, str]
    #: The value in the snapshot table (None: no stored row).
    stored: bool | None
    #: The value evaluated now from the evidence (annual: the year's stored decision).
    value: bool | None
    nodes: list[Node]

    @property
    def matches(self) -> bool | None:
        if self.stored is None or self.value is None:
            return None
        return self.stored == self.value


@dataclass
class ProductLineExplanation:
    product_line_code: str
    product_line_name: str | None
    stored: dict[str, Any] | None  # the business snapshot row
    statuses: list[StatusExplanation]
    plans: list[dict[str, Any]]  # the plan snapshot rows


@dataclass
class Explanation:
    company_id: str
    company_name: str | None
    month: date  # first day
    snapshot_month: date  # month-end
    rules: RulesUsed
    #: Whether the month has any stored snapshot row (for any company).
    refreshed: bool
    previous_loaded_month: date | None
    reference_month: date | None
    product_lines: list[ProductLineExplanation]
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def stale(self) -> list[StatusExplanation]:
        """Statuses whose stored value differs from what the evidence gives now."""
        return [s for p in self.product_lines for s in p.statuses if s.matches is False]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: dates ISO, Decimals as strings."""
        return _jsonable(
            {
                "company_id": self.company_id,
                "company_name": self.company_name,
                "month": label(self.month),
                "snapshot_month": self.snapshot_month,
                "rules": {
                    "origin": self.rules.origin,
                    "revision": self.rules.revision,
                    "sha256": self.rules.sha256,
                },
                "refreshed": self.refreshed,
                "previous_loaded_month": self.previous_loaded_month,
                "reference_month": self.reference_month,
                "product_lines": [
                    {
                        "product_line_code": p.product_line_code,
                        "product_line_name": p.product_line_name,
                        "stored": p.stored,
                        "statuses": [
                            {
                                **asdict(s),
                                "matches": s.matches,
                                "nodes": [asdict(n) for n in s.nodes],
                            }
                            for s in p.statuses
                        ],
                        "plans": p.plans,
                    }
                    for p in self.product_lines
                ],
                "evidence": self.evidence,
            }
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _plain(value: Any) -> Any:
    """Rows without their bookkeeping column (updated_at)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "updated_at"}
    return value


# --- rules ------------------------------------------------------------------------------


def deployed_rules(conn: psycopg.Connection) -> RulesUsed:
    """The rules of the newest deploy recorded in the database, else the checkout's."""
    row = None
    if conn.execute("SELECT to_regclass('cmdm.rule_deployment') IS NOT NULL").fetchone()[0]:
        row = conn.execute(
            "SELECT revision, sha256, rules_text FROM cmdm.rule_deployment"
            " ORDER BY deployment_id DESC LIMIT 1"
        ).fetchone()
    if row is None:
        return RulesUsed("checkout", None, None, load_rules(current_project().rules_dir))
    revision, sha256, texts = row
    ruleset = load_rules_from_texts(texts, origin=f"{revision}:rules/")
    return RulesUsed("deployed", revision, sha256, ruleset)


# --- rule trees -------------------------------------------------------------------------


def path_text(path: tuple[str | int, ...]) -> str:
    """('all', 1, 'not') -> 'rule.all[1].not'."""
    return "rule" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def node_label(ruleset: RuleSet, node: Rule, grain: str, month: date) -> str:
    """What a node tests, in words an analyst reads."""
    kind, body = node.kind, node.body
    end = month_end(month)
    if kind in ("all", "any"):
        return f"{kind} of"
    if kind == "not":
        return "not"
    if kind == "status":
        annual = " (annual: the covering versions' value)" if ruleset.statuses[body].annual else ""
        return f"status {body}{annual}"
    if kind == "field_compare":
        return f"SUM({body.field}) {_OPS[body.op]} {_number(body.value, ruleset)}"
    if kind == "field_equals":
        return f"a fact row has {body.field} = {body.value!r}"
    if kind == "top_n":
        return f"among the top {_number(body.n, ruleset)} by SUM({body.field}) within {body.within}"
    if kind == "disappeared":
        return "disappeared: facts in the previous loaded month, none this month"
    if kind == "first_appearance":
        return "first_appearance: facts this month, none in any earlier month"
    if kind in ("exists_in_year", "exists_in_window"):
        source = ruleset.sources[body.source]
        keys = body.match or tuple(k for k in GRAIN_KEYS[grain] if k in source.keys.names)
        if kind == "exists_in_year":
            since = date(month.year, 1, 1)
        else:
            since = _months_back(month, body.months - 1)
        return (
            f"{kind}: {body.source} ({source.table}) for this {'+'.join(keys)}, "
            f"reported {since.isoformat()}..{end.isoformat()}"
        )
    return kind  # pragma: no cover - every kind is named above


def _number(value: int | float | ConfigRef, ruleset: RuleSet) -> str:
    if isinstance(value, ConfigRef):
        return f"{ruleset.config[value.config]} ({value.config})"
    return str(value)


def _detail(node: Rule, row: dict[str, Any], facts: FactScope) -> str | None:
    """What the evaluated row had for a leaf: its SUM, its presence flags."""
    kind, body = node.kind, node.body
    if kind == "field_compare":
        sql = f"sum(f.{ident(body.field)})"
        name = next((n for n, s in facts.columns.items() if s == sql), None)
        total = row["aggregates"].get(name) if name else None
        return f"SUM = {total if total is not None else 0}"
    if kind == "disappeared":
        before, now = _yes(row["_present_before"]), _yes(row["_present"])
        return f"previous loaded month: {before}; this month: {now}"
    if kind == "first_appearance":
        seen = "a version before this month" if row["_seen_before"] else "nothing before"
        return f"this month: {_yes(row['_present'])}; {seen}"
    return None


def _yes(flag: bool) -> str:
    return "facts" if flag else "no facts"


# --- reading the database ---------------------------------------------------------------


def _date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class _Reader:
    """One company and month, the facts source's SQL names, and a dict-row query helper."""

    conn: psycopg.Connection
    ruleset: RuleSet
    company: str
    month: date  # first day

    def __post_init__(self) -> None:
        src = self.ruleset.facts_source
        self.keys = source_key_columns(src)
        self.col = {k: ident(c) for k, c in self.keys.items()}
        self.table, self.day = qualified(src.table), ident(src.date_field)
        self.measure = ident(self.ruleset.contract.measure)
        self.branch = ident(self.ruleset.contract.branch_field)
        self.end = month_end(self.month)
        #: "plan_code, product_line_code" of a fact row f.
        self.key_select = (
            f"f.{self.col['plan_code']}::text AS plan_code,"
            f" f.{self.col['product_line_code']}::text AS product_line_code"
        )

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, params).fetchall()

    def in_month(self, first_day: date) -> str:
        """WHERE clause: the company's fact rows f of the month starting `first_day`."""
        return (
            f"f.{self.col['company_id']} = {text_literal(self.company)}"
            f" AND f.{self.day} >= {_date(first_day)}"
            f" AND f.{self.day} < {_date(_next_month(first_day))}"
        )

    def month_of(self, aggregate: str, where: str) -> date | None:
        """First day of the min / max month of the fact rows (any company) matching `where`."""
        return self.rows(
            f"SELECT date_trunc('month', {aggregate}(f.{self.day}))::date AS m"
            f" FROM {self.table} f WHERE {where}"
        )[0]["m"]


def explain(
    conn: psycopg.Connection, company: str, month: date, plan: str | None = None
) -> Explanation:
    """Everything `cmdm explain` shows for `company` in the month of `month` (with `plan`:
    only that plan's product lines and plan rows)."""
    rules = deployed_rules(conn)
    db = _Reader(conn, rules.ruleset, company, month.replace(day=1))
    month, end = db.month, db.end
    found = db.rows(
        'SELECT "客户名称" AS name FROM customer."年金客户" WHERE company_id = %(c)s',
        {"c": company},
    )
    if not found:
        raise ExplainError(f"unknown company {company!r}", hint='not in customer."年金客户"')
    day = db.day

    def between(first: date, after: date) -> str:
        return f"f.{day} >= {_date(first)} AND f.{day} < {_date(after)}"

    if db.month_of("max", between(month, _next_month(month))) is None:
        raise ExplainError(
            f"{label(month)} has no facts (not a loaded month)", hint="see `cmdm overview`"
        )
    previous = db.month_of("max", f"f.{day} < {_date(month)}")
    versions = db.rows(
        f"SELECT c.* FROM {_CONTRACT} c WHERE c.company_id = %(c)s"
        " AND c.valid_from <= %(e)s AND c.valid_to > %(e)s"
        " ORDER BY c.product_line_code, c.plan_code",
        {"c": company, "e": end},
    )
    if not versions:
        raise ExplainError(f"company {company!r} has no contract covering {label(month)}")
    if plan is not None and not any(v["plan_code"] == plan for v in versions):
        raise ExplainError(
            f"company {company!r} has no contract of plan {plan!r} covering {label(month)}"
        )
    decided = db.rows(
        "SELECT date_trunc('month', r.reference_month)::date AS m"
        " FROM customer.annual_reference r WHERE r.status_year = %(y)s",
        {"y": month.year},
    )
    reference = decided[0]["m"] if decided else None

    stored = {
        grain: db.rows(
            f"SELECT * FROM {table} WHERE snapshot_month = %(e)s AND company_id = %(c)s"
            " ORDER BY product_line_code" + (", plan_code" if grain == "plan" else ""),
            {"c": company, "e": end},
        )
        for grain, table in _SNAPSHOT_TABLES.items()
    }
    refreshed = bool(
        stored["business"]
        or db.rows(
            f"SELECT FROM {_SNAPSHOT_TABLES['business']} WHERE snapshot_month = %(e)s LIMIT 1",
            {"e": end},
        )
    )
    lines = {v["product_line_code"]: v["product_line_name"] for v in versions}
    for b in stored["business"]:  # a stale snapshot may hold a pair no longer covered
        lines.setdefault(b["product_line_code"], b["product_line_name"])
    if plan is not None:
        lines = {
            code: text
            for code, text in lines.items()
            if any(v["plan_code"] == plan and v["product_line_code"] == code for v in versions)
        }
    decisions, ranks = _decisions(db, versions)
    product_lines = _statuses(db, previous, stored, lines, plan, decisions)
    evidence = _evidence(db, previous, reference, versions, ranks)
    if plan is not None:  # the plan's product lines, all their plans (they decide the line)
        evidence = {
            k: [r for r in v if r.get("product_line_code") in (None, *lines)]
            for k, v in evidence.items()
        }
    return Explanation(
        company_id=company,
        company_name=found[0]["name"],
        month=month,
        snapshot_month=end,
        rules=rules,
        refreshed=refreshed,
        previous_loaded_month=month_end(previous) if previous else None,
        reference_month=month_end(reference) if reference else None,
        product_lines=product_lines,
        evidence={k: _plain(v) for k, v in evidence.items()},
    )


# --- the statuses: one query evaluates every node of every monthly rule ------------------


def _statuses(
    db: _Reader,
    previous: date | None,
    stored: dict[str, list[dict[str, Any]]],
    lines: dict[str, str | None],
    plan: str | None,
    decisions: dict[tuple[str, tuple[str, ...]], bool],
) -> list[ProductLineExplanation]:
    ruleset, month = db.ruleset, db.month
    # The refresh's scope (render.snapshot_context): one FactScope over row r for every grain.
    facts = FactScope("plan", "r", db.keys)
    facts.sum_of(ruleset.contract.measure)
    row = MonthRow(
        alias="r",
        month_start=_date(month),
        month_end=_date(db.end),
        present="r._present",
        present_before="r._present_before",
        seen_before="r._seen_before",
        annual="r",
    )
    scope = MonthlyScope(ruleset, row, dict.fromkeys(GRAIN_KEYS, facts))
    trees: dict[str, list[tuple[str, int, Rule]]] = {}
    #: (status, grain evaluated at) -> index of each node's expression at that grain
    indexes: dict[tuple[str, str], list[int]] = {}
    exprs: dict[str, list[str]] = {}
    for name, status in ruleset.statuses.items():
        trees[name] = []
        for path, node in status.rule.walk():
            depth = sum(isinstance(p, int) or p == "not" for p in path)
            trees[name].append((path_text(path), depth, node))
            if status.annual:
                continue
            for grain in [status.grain] if status.grain else ROW_GRAINS.values():
                exprs.setdefault(grain, []).append(compile_rule(node, scope, grain))
                indexes.setdefault((name, grain), []).append(len(exprs[grain]) - 1)
    evaluated = db.rows(_evaluation_sql(db, facts, previous, exprs))
    for r in evaluated:
        r["aggregates"] = dict(zip(facts.columns, r["aggregates"], strict=True))

    def explained(name: str, grain: str, key: dict[str, str], stored_row: dict | None, data):
        status = ruleset.statuses[name]
        nodes = []
        for number, (path, depth, node) in enumerate(trees[name]):
            evaluated_here = data is not None and not status.annual
            index = indexes[(name, grain)][number] if evaluated_here else None
            nodes.append(
                Node(
                    path,
                    depth,
                    node.kind,
                    node_label(ruleset, node, grain, month),
                    data["nodes"][index] if evaluated_here else None,
                    _detail(node, data, facts) if evaluated_here else None,
                )
            )
        value = data if status.annual else nodes[0].value
        return StatusExplanation(
            status=name,
            grain=grain,
            annual=status.annual,
            description=" ".join(status.description.split()),
            key=key,
            stored=stored_row.get(name) if stored_row else None,
            value=value,
            nodes=nodes,
        )

    def first(grain: str, **key: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in evaluated
                if r["grain"] == grain and all(r[k] == v for k, v in key.items())
            ),
            None,
        )

    def annual_value(name: str, code: str) -> bool | None:
        """The decided value shown on the pair's row (bool_or over its plans' keys)."""
        grain = ruleset.statuses[name].decided_grain
        found = [
            value
            for (status, key), value in decisions.items()
            if status == name and key[0] == db.company and (grain == "company" or key[-1] == code)
        ]
        return any(found) if found else None

    out = []
    for code, line_name in sorted(lines.items()):
        business = next((b for b in stored["business"] if b["product_line_code"] == code), None)
        plans = [
            p
            for p in stored["plan"]
            if p["product_line_code"] == code and plan in (None, p["plan_code"])
        ]
        pair = {"company_id": db.company, "product_line_code": code}
        statuses = []
        for name, status in ruleset.statuses.items():
            if status.annual:
                key = {"company_id": db.company} if status.grain == "company" else pair
                grain = status.decided_grain
                statuses.append(explained(name, grain, key, business, annual_value(name, code)))
                continue
            if status.grain in (None, "product_line"):
                data = first("product_line", product_line_code=code)
                statuses.append(explained(name, "product_line", pair, business, data))
            elif status.grain == "company":
                data = first("company")
                statuses.append(
                    explained(name, "company", {"company_id": db.company}, business, data)
                )
            if status.grain in (None, "plan"):
                # the plan table speaks for each plan (DESIGN §4)
                for data in evaluated:
                    if data["grain"] != "plan" or data["product_line_code"] != code:
                        continue
                    if plan not in (None, data["plan_code"]):
                        continue
                    stored_plan = next(
                        (p for p in plans if p["plan_code"] == data["plan_code"]), None
                    )
                    key = {**pair, "plan_code": data["plan_code"]}
                    statuses.append(explained(name, "plan", key, stored_plan, data))
        out.append(
            ProductLineExplanation(code, line_name, _plain(business), statuses, _plain(plans))
        )
    return out


def _decisions(
    db: _Reader, versions: list[dict[str, Any]]
) -> tuple[dict[tuple[str, tuple[str, ...]], bool], list[dict[str, Any]]]:
    """The year's decision for the keys of the company's covering versions: each annual
    status's value per key of its grain (the stored row's, else the rule's over no facts,
    as the sync takes it), and the top_n ranks the decision recorded as evidence."""
    _, grains = annual_context(db.ruleset, db.keys)
    year = db.month.year
    values: dict[tuple[str, tuple[str, ...]], bool] = {}
    ranks: list[dict[str, Any]] = []
    for g in grains:
        if not g["statuses"] or not versions:
            continue
        names = GRAIN_KEYS[g["grain"]]
        keys = sorted({tuple(str(v[k]) for k in names) for v in versions})
        rows = ", ".join("(" + ", ".join(text_literal(x) for x in key) + ")" for key in keys)
        alias = g["stored_alias"]
        join = " AND ".join(f"{alias}.{k} = k.{k}" for k in names)
        found = db.rows(
            f"SELECT {', '.join(f'k.{k}' for k in names)}, {alias}.evidence,"
            + ", ".join(
                f" coalesce({alias}.{s['name']}, {s['absent']}) AS {s['name']}"
                for s in g["statuses"]
            )
            + f" FROM (VALUES {rows}) k ({', '.join(names)})"
            f" LEFT JOIN {g['stored']} {alias} ON {alias}.status_year = {year} AND {join}"
        )
        for r in found:
            key = tuple(r[k] for k in names)
            for s in g["statuses"]:
                values[(s["plain"], key)] = r[s["name"]]
            ranked = [
                s["plain"]
                for s in g["statuses"]
                if any(n.top_n is not None for _, n in db.ruleset.statuses[s["plain"]].rule.walk())
            ]
            for name in ranked:
                for spec in (r["evidence"] or {}).values():
                    if not (isinstance(spec, dict) and "ranks" in spec):
                        continue
                    for rank in spec["ranks"] or []:
                        ranks.append(
                            {
                                "status": name,
                                **dict(zip(names, key, strict=True)),
                                "within": spec["within"],
                                "within_value": rank["group"],
                                "rank": rank["rank"],
                                "group_size": rank["of"],
                                "n": spec["n"],
                                "in_top_n": rank["rank"] <= spec["n"],
                            }
                        )
    return values, ranks


def _evaluation_sql(
    db: _Reader, facts: FactScope, previous: date | None, nodes: dict[str, list[str]]
) -> str:
    """The rows of each grain customer.refresh_monthly_snapshot builds (docs/snapshots.md),
    for one company, each with every node expression of the monthly statuses of its grain:
    the contract versions covering the month-end, their month's facts aggregated, whether
    they had facts this month, in the previous loaded month, and a version starting before
    the month-end; rolled up with sum / bool_or."""
    annual = [ident(n) for n in db.ruleset.annual_statuses]
    aggregates = [(ident(name), sql) for name, sql in facts.columns.items()]
    end = _date(db.end)
    company = f"f.{db.col['company_id']}::text AS company_id"

    def same(a: str, b: str, grain: str) -> str:
        return " AND ".join(f"{a}.{k} = {b}.{k}" for k in GRAIN_KEYS[grain])

    def seen(alias: str, grain: str) -> str:
        return (
            f"EXISTS (SELECT FROM {_CONTRACT} e WHERE {same('e', alias, grain)}"
            f" AND e.valid_from < {end}) AS _seen_before"
        )

    in_previous = db.in_month(previous) if previous else "false"
    ctes = [
        f"m AS (SELECT {company}, {db.key_select}"
        + "".join(f", {sql} AS {name}" for name, sql in aggregates)
        + f" FROM {db.table} f WHERE {db.in_month(db.month)} GROUP BY 1, 2, 3)",
        f"p AS (SELECT DISTINCT {company}, {db.key_select} FROM {db.table} f WHERE {in_previous})",
        "g_plan AS (SELECT c.company_id::text AS company_id, c.plan_code::text AS plan_code,"
        " c.product_line_code::text AS product_line_code,"
        " m.company_id IS NOT NULL AS _present, p.company_id IS NOT NULL AS _present_before, "
        + seen("c", "plan")
        + "".join(f", c.{a}" for a in annual)
        + "".join(f", m.{name}" for name, _ in aggregates)
        + f" FROM {_CONTRACT} c LEFT JOIN m ON {same('m', 'c', 'plan')}"
        f" LEFT JOIN p ON {same('p', 'c', 'plan')}"
        f" WHERE c.company_id = {text_literal(db.company)}"
        f" AND c.valid_from <= {end} AND c.valid_to > {end})",
    ]
    for grain in ("product_line", "company"):
        keys = ", ".join(f"k.{k}" for k in GRAIN_KEYS[grain])
        ctes.append(
            f"g_{grain} AS (SELECT {keys}, bool_or(k._present) AS _present,"
            f" bool_or(k._present_before) AS _present_before, {seen('k', grain)}"
            + "".join(f", bool_or(k.{a}) AS {a}" for a in annual)
            + "".join(f", {sql.split('(')[0]}(k.{name}) AS {name}" for name, sql in aggregates)
            + f" FROM g_plan k GROUP BY {keys})"
        )
    selects = []
    for grain in ("plan", "product_line", "company"):
        keys = ", ".join(
            f"r.{k}" if k in GRAIN_KEYS[grain] else "NULL::text"
            for k in ("company_id", "plan_code", "product_line_code")
        )
        selects.append(
            f"SELECT '{grain}'::text AS grain, {keys}, "
            + ", ".join(f"r.{flag}" for flag in _ROW_FLAGS)
            + f", ARRAY[{', '.join(f'r.{n}::text' for n, _ in aggregates)}]::text[] AS aggregates"
            f", ARRAY[{', '.join(nodes.get(grain, []))}]::boolean[] AS nodes FROM g_{grain} r"
        )
    return "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(selects)


# --- evidence -----------------------------------------------------------------------------


def _evidence(
    db: _Reader,
    previous: date | None,
    reference: date | None,
    versions: list[dict[str, Any]],
    ranks: list[dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """The rows behind the statuses: facts (this month, the previous loaded month, the
    reference month), first months seen, events, covering versions, top_n ranks."""
    pl_join = f'LEFT JOIN mapping."产品线" pl ON pl."产品线代码" = f.{db.col["product_line_code"]}'
    valid = f'f.{db.col["plan_code"]} IS NOT NULL AND pl."产品线代码" IS NOT NULL'
    evidence: dict[str, list[dict[str, Any]]] = {}
    evidence["facts"] = db.rows(
        f"SELECT {db.key_select}, f.{ident(PORTFOLIO_COLUMN)}::text AS portfolio,"
        f" f.{db.measure} AS aum, f.{db.branch}::text AS branch, ({valid}) AS counted"
        f" FROM {db.table} f {pl_join} WHERE {db.in_month(db.month)} ORDER BY 2, 1, 3"
    )
    for name, first_day in (("previous_month_keys", previous), ("reference_facts", reference)):
        evidence[name] = []
        if first_day is None:
            continue
        branch = f", f.{db.branch}::text AS branch" if name == "reference_facts" else ""
        evidence[name] = db.rows(
            f"SELECT {_date(month_end(first_day))} AS month, {db.key_select}{branch},"
            f" sum(f.{db.measure}) AS aum FROM {db.table} f {pl_join}"
            f" WHERE {db.in_month(first_day)} AND {valid}"
            f" GROUP BY {'2, 3, 4' if branch else '2, 3'} ORDER BY 3, 2"
        )
    evidence["first_seen"] = db.rows(
        f"SELECT {db.key_select},"
        f" (date_trunc('month', min(f.{db.day})) + INTERVAL '1 month - 1 day')::date AS first_month"
        f" FROM {db.table} f {pl_join} WHERE f.{db.col['company_id']} = %(c)s"
        f" AND f.{db.day} < %(n)s AND {valid} GROUP BY 1, 2 ORDER BY 2, 1",
        {"c": db.company, "n": _next_month(db.month)},
    )
    for r in evidence["first_seen"]:
        r["first_this_month"] = r["first_month"] == db.end
    evidence["events"] = _events(db)
    columns = ("plan_code", "product_line_code", "contract_status", *db.ruleset.annual_statuses)
    columns += ("status_year", "valid_from", "valid_to")
    evidence["versions"] = [{k: v[k] for k in columns if k in v} for v in versions]
    evidence["reference_ranks"] = ranks
    return evidence


def _events(db: _Reader) -> list[dict[str, Any]]:
    """The company's records of every events source, from the earliest day a monthly rule
    looks back to through December; `counted` is false after the month-end (not yet
    reported as of the month)."""
    since = date(db.month.year, 1, 1)
    for status in db.ruleset.monthly_statuses.values():
        for _, node in status.rule.walk():
            if node.exists_in_window is not None:
                since = min(since, _months_back(db.month, node.exists_in_window.months - 1))
    out: list[dict[str, Any]] = []
    for name, source in db.ruleset.event_sources.items():
        column = source.keys.column
        day = f"e.{ident(source.date_field)}"
        plan = f"e.{ident(column('plan_code'))}" if "plan_code" in source.keys.names else "NULL"
        for r in db.rows(
            f"SELECT {plan}::text AS plan_code,"
            f" e.{ident(column('product_line_code'))}::text AS product_line_code,"
            f" {day} AS reported FROM {qualified(source.table)} e"
            f" WHERE e.{ident(column('company_id'))} = %(c)s AND {day} >= %(s)s AND {day} < %(n)s"
            " ORDER BY 3, 2, 1",
            {"c": db.company, "s": since, "n": date(db.month.year + 1, 1, 1)},
        ):
            counted = r["reported"] <= db.end
            out.append({"source": name, "table": source.table, **r, "counted": counted})
    return out
