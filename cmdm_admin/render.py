"""Render `sql/functions/*.sql.j2` and `sql/triggers/*.sql.j2` from a validated `RuleSet`.

Decisions live here and in `cmdm_admin.compiler`; the templates only place the fragments
they are handed. Rendering is deterministic: the same rules and templates give the same
bytes, and the sha256 of those bytes identifies a deploy (`Rendered.sha256`). Each object
carries that hash in its banner and in its COMMENT, so a database tells which rules it runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from cmdm_admin.compiler import (
    DECISION_ALIAS,
    AnnualScope,
    ContractScope,
    FactScope,
    MonthlyScope,
    MonthRow,
    compile_rule,
    ident,
    literal,
    qualified,
    source_key_columns,
    text_literal,
)
from cmdm_admin.errors import CmdmError
from cmdm_admin.project import sql_dir
from cmdm_admin.rules import GRAIN_KEYS, RuleSet

#: Template folders under sql/, in render order (functions before the triggers using them).
TEMPLATE_FOLDERS = ("functions", "triggers")
TEMPLATE_SUFFIX = ".sql.j2"

#: The dollar-quote tag of every routine body (sql/macros/header.sql.j2).
BODY_TAG = "$fn$"

#: Columns of the data contract (DESIGN §3) that the rules do not name.
PORTFOLIO_COLUMN = "组合代码"

#: The post-ETL hook domain whose steps the facts and events triggers run (cmdm.hook_domain).
HOOK_DOMAIN = "annuity_performance"

#: The row customer.sync_contract_status returns.
SYNC_RESULT_COLUMNS = (
    ("period", "date"),
    ("keys_seen", "bigint"),
    ("keys_changed", "bigint"),
    ("keys_unchanged", "bigint"),
    ("versions_opened", "bigint"),
    ("versions_closed", "bigint"),
    ("versions_removed", "bigint"),
    ("versions_reflagged", "bigint"),
    ("rejected_null_key", "bigint"),
    ("rejected_blank_key", "bigint"),
    ("rejected_unknown_product_line", "bigint"),
    ("rejected_unknown_company", "bigint"),
    ("changed_until", "date"),
    ("snapshot_months", "date[]"),
    ("ms", "jsonb"),  # milliseconds per step, for the hook log
)

#: The row customer.refresh_monthly_snapshot returns.
SNAPSHOT_RESULT_COLUMNS = (
    ("snapshot_month", "date"),
    ("business_rows", "bigint"),
    ("business_inserted", "bigint"),
    ("business_updated", "bigint"),
    ("business_deleted", "bigint"),
    ("plan_rows", "bigint"),
    ("plan_inserted", "bigint"),
    ("plan_updated", "bigint"),
    ("plan_deleted", "bigint"),
    # fact rows left out because an amount does not fit aum_balance (cmdm.rejected_fact)
    ("rejected_amount_overflow", "bigint"),
    ("ms", "jsonb"),  # milliseconds per step, for the hook log
)

#: The grain of a row of each snapshot table: where a status without `grain:` is evaluated.
ROW_GRAINS = {"plan": "plan", "business": "product_line"}

#: Snapshot scratch-table columns that are not statuses or aggregates. A status name
#: matches [a-z][a-z0-9_]*, so these leading underscores can never collide with one.
SNAPSHOT_ROW_FLAGS = ("_present", "_present_before", "_seen_before")

_IDENTITY = re.compile(
    r"^CREATE OR REPLACE (FUNCTION|PROCEDURE) ([\w.\"]+)\((.*?)\)$", re.MULTILINE
)


class RenderError(CmdmError):
    """A template cannot be rendered (a template bug, named with its file)."""


@dataclass(frozen=True)
class RenderedObject:
    """One template's output: a routine (and, for triggers, the CREATE TRIGGER with it)."""

    template: str  # path relative to the project, e.g. sql/functions/customer.x.sql.j2
    kind: str  # 'function' or 'procedure'
    identity: str  # regprocedure form, e.g. customer.sync_contract_status(date)
    triggers: tuple[tuple[str, str], ...]  # (trigger name, table) created by this object
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Rendered:
    """Everything one set of rules renders to."""

    objects: tuple[RenderedObject, ...]
    sha256: str
    #: Boolean status columns each output table must have, in rules order.
    status_columns: dict[str, tuple[str, ...]]

    @property
    def sql(self) -> str:
        return "\n".join(o.sql for o in self.objects)


def in_comment(text: str) -> str:
    """`text` made safe inside a `--` or `/* */` comment: names from rules/ may hold line
    breaks or `*/`, which would end the comment and let the rest run as SQL."""
    text = re.sub(r"[\r\n\v\f\x85\u2028\u2029]+", " ", str(text))
    return text.replace("*/", "* /").replace("/*", "/ *")


def environment(root: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root or sql_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["ident"] = ident
    env.filters["literal"] = literal
    env.filters["prefix"] = lambda text, prefix: f"{prefix}{text}"
    env.filters["in_comment"] = in_comment
    return env


def template_names(root: Path | None = None) -> list[str]:
    """Template paths relative to sql/, functions first, each folder sorted by name."""
    base = root or sql_dir()
    names: list[str] = []
    for folder in TEMPLATE_FOLDERS:
        names += sorted(f"{folder}/{p.name}" for p in (base / folder).glob(f"*{TEMPLATE_SUFFIX}"))
    return names


def status_columns(ruleset: RuleSet) -> dict[str, tuple[str, ...]]:
    statuses = tuple(ruleset.statuses)
    annual = ruleset.annual_statuses
    return {
        "customer.customer_plan_contract": tuple(annual),
        "customer.fct_customer_business_monthly_status": statuses,
        "customer.fct_customer_plan_monthly_status": statuses,
    } | {
        f"customer.annual_{grain}_status": tuple(
            name for name, status in annual.items() if status.decided_grain == grain
        )
        for grain in GRAIN_KEYS
    }


def build_context(ruleset: RuleSet) -> dict[str, Any]:
    """What the templates read: identifiers quoted, values as literals, rules compiled."""
    facts_source = ruleset.facts_source
    contract = ruleset.contract
    keys = source_key_columns(facts_source)

    month_scope = FactScope("plan", "m", keys)
    contract_scope = ContractScope(ruleset, month_scope)
    cases = [
        (compile_rule(case.when, contract_scope, "plan"), case.value)
        for case in contract.status.cases
    ]
    status_sql = (
        "CASE"
        + "".join(
            f"\n    WHEN {condition}\n        THEN {text_literal(value)}"
            for condition, value in cases
        )
        + f"\n    ELSE {text_literal(contract.status.default)}\nEND"
    )
    if not cases:
        status_sql = text_literal(contract.status.default)

    annual_statuses, grains = annual_context(ruleset, keys)
    reference_fields: dict[str, None] = dict.fromkeys(keys.values())
    for grain in grains:
        reference_fields.update(grain["fields"])
    state_plain_columns = ["contract_status", "status_year"] + [s["plain"] for s in annual_statuses]
    state_types = ["text", "integer"] + ["boolean"] * len(annual_statuses)
    state_columns = [ident(c) for c in state_plain_columns]
    state_column_defs = [f"{c} {t}" for c, t in zip(state_columns, state_types, strict=True)]
    old_state_columns = [ident(f"old_{c}") for c in state_plain_columns]
    old_state_column_defs = [
        f"{c} {t}" for c, t in zip(old_state_columns, state_types, strict=True)
    ]
    bool_state_columns = [s["name"] for s in annual_statuses]
    suspended = contract.suspended_status or contract.status.default

    annual_text = "; ".join(
        f"{name}: {' '.join(status.description.split())}"
        for name, status in ruleset.annual_statuses.items()
    )
    status_text = "; ".join(f"{value} when {cond}" for cond, value in cases)
    comment = (
        "SCD Type 2 sync of customer.customer_plan_contract for one month. Contract status: "
        f"{status_text + '; ' if status_text else ''}else {contract.status.default}; "
        f"on_missing {contract.on_missing} ({suspended}). Annual statuses: "
        f"{annual_text or 'none'}."
    )
    snapshot = snapshot_context(ruleset, keys, contract.measure)
    event_tables = {s.table: s.date_field for s in ruleset.event_sources.values()}
    return {
        "hooks": {
            "domain": text_literal(HOOK_DOMAIN),
            "event_tables": [
                {"table": qualified(t), "plain": t, "date_field": text_literal(d)}
                for t, d in sorted(event_tables.items())
            ],
        },
        "snapshot": snapshot,
        "snapshot_result_columns": "TABLE ("
        + ", ".join(f"{name} {type_}" for name, type_ in SNAPSHOT_RESULT_COLUMNS)
        + ")",
        "facts": {
            "table": qualified(facts_source.table),
            "month": ident(facts_source.date_field),
            "company_id": ident(keys["company_id"]),
            "plan_code": ident(keys["plan_code"]),
            "product_line_code": ident(keys["product_line_code"]),
            "measure": ident(contract.measure),
            "branch": ident(contract.branch_field),
            "portfolio": ident(PORTFOLIO_COLUMN),
        },
        "contract": {
            "aggregates": [(ident(name), sql) for name, sql in month_scope.columns.items()],
            "status_sql": status_sql,
            "on_missing": contract.on_missing,
            "suspended_literal": text_literal(suspended),
        },
        "annual": {
            "statuses": annual_statuses,
            "grains": grains,
            "decided_grains": [g for g in grains if g["statuses"]],
        },
        "reference_fact_columns": [ident(f) for f in reference_fields],
        "state_columns": state_columns,
        "state_plain_columns": state_plain_columns,
        "state_column_defs": state_column_defs,
        "old_state_columns": old_state_columns,
        "old_state_column_defs": old_state_column_defs,
        "bool_state_columns": bool_state_columns,
        "result_columns": "TABLE ("
        + ", ".join(f"{name} {type_}" for name, type_ in SYNC_RESULT_COLUMNS)
        + ")",
        "sync_comment": comment,
    }


def annual_context(ruleset: RuleSet, keys: dict) -> tuple[list[dict], list[dict]]:
    """The annual statuses and, per grain, how a year's reference month decides them
    (customer.compute_annual_statuses) and where the decision is stored.

    Each status is compiled over the aggregate row of its grain at the reference month
    (alias ref_<grain>); `absent` is the same expression over a row of NULLs: the value
    for a key without facts at the reference month, which has no stored row.
    """
    annual = AnnualScope(ruleset, keys)
    statuses = []
    for name, status in ruleset.annual_statuses.items():
        grain = status.decided_grain
        annual.grain(grain)
        statuses.append(
            {
                "name": ident(name),
                "plain": name,
                "grain": grain,
                "expr": compile_rule(status.rule, annual, grain),
                "description": " ".join(status.description.split()),
            }
        )
    grains = []
    for grain, scope in sorted(annual.grains.items(), key=lambda item: _grain_rank(item[0])):
        key_names = [ident(k) for k in GRAIN_KEYS[grain]]
        columns = [(ident(name), sql) for name, sql in scope.columns.items()]
        top_ns = [
            {
                "alias": f"top_{index}",
                "column": ident(t.column),
                "field_sql": ident(t.field),
                "within_sql": ident(t.within),
                "n": t.n,
                "evidence": "pg_catalog.jsonb_build_object("
                f"'field', {text_literal(t.field)}, 'n', {t.n}, "
                f"'within', {text_literal(t.within)}, 'ranks', top_{index}.ranks)",
            }
            for index, t in enumerate(scope.top_ns, start=1)
        ]
        own = [s for s in statuses if s["grain"] == grain]
        for status in own:
            status["absent"] = annual.absent(status["plain"])
            status["stored_alias"] = DECISION_ALIAS.format(grain=grain)
        # decisions of coarser grains its statuses read (a_<grain>), joined when deciding it
        reads = [
            {
                "grain": other,
                "alias": DECISION_ALIAS.format(grain=other),
                "scratch": f"cmdm_annual_{other}",
                "key_names": [ident(k) for k in GRAIN_KEYS[other]],
            }
            for other in GRAIN_KEYS
            if other != grain
            and any(f"{DECISION_ALIAS.format(grain=other)}." in st["expr"] for st in own)
        ]
        evidence = [(text_literal(name), f"{scope.alias}.{ident(name)}") for name in scope.columns]
        evidence += [
            (text_literal(t.column), spec["evidence"])
            for t, spec in zip(scope.top_ns, top_ns, strict=True)
        ]
        grains.append(
            {
                "grain": grain,
                "alias": scope.alias,
                "stored": f"customer.annual_{grain}_status",
                "stored_alias": DECISION_ALIAS.format(grain=grain),
                "scratch": f"cmdm_annual_{grain}",
                "key_names": key_names,
                "fact_keys": [ident(keys[k]) for k in GRAIN_KEYS[grain]],
                "columns": columns,
                "top_ns": top_ns,
                "statuses": own,
                "reads": reads,
                "fields": scope.fields,
                "evidence": "pg_catalog.jsonb_build_object("
                + ", ".join(f"{k}, {v}" for k, v in evidence)
                + ")",
                "scratch_defs": ["status_year integer"]
                + [f"{k} text" for k in key_names]
                + ["evidence jsonb"]
                + [f"{st['name']} boolean" for st in own],
            }
        )
    return statuses, grains


def snapshot_context(ruleset: RuleSet, keys: dict, measure: str) -> dict[str, Any]:
    """What customer.refresh_monthly_snapshot and the dependency functions read.

    Every monthly status is compiled at the grain it is evaluated at, over one scratch row
    per key of that grain (alias `r`): the month's fact aggregates (computed per contract
    key and rolled up, as SUM and bool_or are), presence flags, and the annual statuses of
    the versions covering the month (bool_or). A status with a `grain:` is compiled once,
    at that grain; one without is compiled at each table's row key (plan, product_line),
    so each table speaks for its own row (DESIGN §4). See docs/snapshots.md.
    """
    facts = FactScope("plan", "r", keys)
    facts.sum_of(measure)
    measure_sql = f"sum(f.{ident(measure)})"
    measure_column = next(n for n, sql in facts.columns.items() if sql == measure_sql)
    row = MonthRow(
        alias="r",
        month_start="v_month_start",
        month_end="v_month_end",
        present="r._present",
        present_before="r._present_before",
        seen_before="r._seen_before",
        annual="r",
    )
    scope = MonthlyScope(ruleset, row, dict.fromkeys(GRAIN_KEYS, facts))
    monthly: dict[str, list[dict[str, str]]] = {}
    for name, status in ruleset.statuses.items():
        if status.annual:
            continue
        for grain in [status.grain] if status.grain else ROW_GRAINS.values():
            expr = compile_rule(status.rule, scope, grain)
            monthly.setdefault(grain, []).append({"name": ident(name), "expr": expr})
    annual = [ident(n) for n in ruleset.annual_statuses]
    clash = sorted(set(ruleset.annual_statuses) & set(facts.columns))
    if clash:
        raise RenderError(
            f"status {clash[0]!r} has the name of an internal column of the snapshot refresh; "
            "rename the status"
        )
    aggregates = [
        {"name": ident(n), "sql": sql, "type": _aggregate_type(sql), "rollup": sql.split("(")[0]}
        for n, sql in facts.columns.items()
    ]
    row_grains = ["plan", "product_line"] + (["company"] if "company" in monthly else [])
    grains = []
    for grain in sorted(row_grains, key=_grain_rank, reverse=True):
        key_names = list(GRAIN_KEYS[grain])
        grains.append(
            {
                "grain": grain,
                "table": f"cmdm_snap_{grain}",
                "key_names": key_names,
                "statuses": monthly.get(grain, []),
                "column_defs": [f"{k} text" for k in key_names]
                + (["valid_from date"] if grain == "plan" else ["plan_count bigint"])
                + [f"{f} boolean" for f in SNAPSHOT_ROW_FLAGS]
                + [f"{a} boolean" for a in annual]
                + [f"{a['name']} {a['type']}" for a in aggregates],
            }
        )

    def column(name: str, table: str) -> str:
        status = ruleset.statuses[name]
        if status.annual:
            return f"coalesce(r.{ident(name)}, false)"
        return f"coalesce(s_{status.grain_at(ROW_GRAINS[table])}.{ident(name)}, false)"

    reach = sorted(scope.event_reach)
    return {
        "grains": grains,
        "status_grains": [g for g in grains if g["statuses"]],
        "annual": annual,
        "aggregates": aggregates,
        "measure_column": ident(measure_column),
        "statuses": [ident(n) for n in ruleset.statuses],
        "status_defs": [f"{ident(n)} boolean" for n in ruleset.statuses],
        "business_new_defs": ["company_id text", "product_line_code text", "product_line_name text"]
        + [f"{ident(n)} boolean" for n in ruleset.statuses]
        + ["aum_balance numeric(20, 2)", "plan_count integer"],
        "plan_new_defs": [
            "company_id text",
            "plan_code text",
            "product_line_code text",
            "product_line_name text",
        ]
        + [f"{ident(n)} boolean" for n in ruleset.statuses]
        + ["aum_balance numeric(20, 2)"],
        "plan_columns": [column(n, "plan") for n in ruleset.statuses],
        "business_columns": [column(n, "business") for n in ruleset.statuses],
        "first_appearance_grains": [
            {"grain": g, "key_names": list(GRAIN_KEYS[g])}
            for g in sorted(scope.first_appearance_grains, key=_grain_rank)
        ],
        "event_reach": [
            "(pg_catalog.date_trunc('year', v_month_start) + INTERVAL '1 year - 1 day')::date"
            if kind == "year"
            else f"(v_month_start + INTERVAL '{months} months - 1 day')::date"
            for kind, months in reach
        ],
    }


def _grain_rank(grain: str) -> int:
    return list(GRAIN_KEYS).index(grain)


def _aggregate_type(sql: str) -> str:
    return "boolean" if sql.startswith("bool_or(") else "numeric"


def render_rules(ruleset: RuleSet, root: Path | None = None) -> Rendered:
    """Render every template for `ruleset`: deterministic, hash included."""
    env = environment(root)
    context = build_context(ruleset)
    names = template_names(root)
    if not names:
        raise RenderError(f"no templates (*{TEMPLATE_SUFFIX}) under {root or sql_dir()}")

    def render_all(sha: str) -> list[tuple[str, str]]:
        out = []
        for name in names:
            values = dict(context, template=f"sql/{name}", rules_sha256=sha)
            values["comment"] = text_literal(f"{context['sync_comment']} rules sha256 {sha}")
            try:
                text = env.get_template(name).render(values)
            except jinja2.TemplateError as exc:
                where = f"sql/{name}"
                if getattr(exc, "lineno", None):
                    where += f":{exc.lineno}"
                raise RenderError(f"{where}: {exc}") from exc
            out.append((name, _tidy(text)))
        return out

    draft = render_all("0" * 64)
    sha = hashlib.sha256("".join(f"{n}\n{t}" for n, t in draft).encode("utf-8")).hexdigest()
    objects = tuple(_object(f"sql/{name}", text) for name, text in render_all(sha))
    return Rendered(objects=objects, sha256=sha, status_columns=status_columns(ruleset))


def _tidy(text: str) -> str:
    """No trailing spaces, one newline at the end."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) + "\n"


def _object(template: str, sql: str) -> RenderedObject:
    # A rule's name or value can never end the routine body early: values are written
    # without `$`; a name holding the body's dollar tag is refused here.
    if sql.count(BODY_TAG) != 2:
        raise RenderError(
            f"{template}: the rendered routine does not have exactly one {BODY_TAG} body "
            f"(a name in rules/ contains {BODY_TAG!r}?); rename it"
        )
    match = _IDENTITY.search(sql)
    if not match:
        raise RenderError(f"{template}: no CREATE OR REPLACE FUNCTION/PROCEDURE header found")
    kind, name, args = match.group(1).lower(), match.group(2), match.group(3)
    triggers = tuple(
        (m.group(1), m.group(2))
        for m in re.finditer(
            r"^CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER (\S+)\n.*?\bON (\S+)",
            sql,
            re.MULTILINE | re.DOTALL,
        )
    )
    return RenderedObject(
        template=template,
        kind=kind,
        identity=f"{name}({_arg_types(args)})",
        triggers=triggers,
        sql=sql,
    )


def _arg_types(args: str) -> str:
    """'p_from date DEFAULT NULL, p_to date' -> 'date, date' (the regprocedure form)."""
    types = []
    for arg in filter(None, (a.strip() for a in args.split(","))):
        arg = re.split(r"\s+DEFAULT\s+|\s*=\s*", arg, maxsplit=1)[0]
        parts = arg.split()
        if parts and parts[0].upper() in ("IN", "OUT", "INOUT", "VARIADIC"):
            parts = parts[1:]
        types.append(" ".join(parts[1:]) if len(parts) > 1 else parts[0])
    return ", ".join(types)
