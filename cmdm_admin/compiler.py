"""Rule → SQL: identifiers, literals, and one boolean SQL expression per rule.

Nothing from a rule file reaches SQL as raw text. Identifiers go through `ident` (checked,
quoted when they are not plain lower-case names), values through `literal` (typed literals,
quotes doubled, backslashes written so the text means the same whatever
`standard_conforming_strings` says). The templates in `sql/` only place what this module
returns.

A rule is compiled in a *scope*: the rows it is evaluated on and what they can read.

- `FactScope` — rows of one grain aggregated over the facts of one month (the contract
  status of a key in its month; an annual status at the year's reference month). Facts
  conditions become aggregate columns of that grain (`sum(f."期末资产规模")`,
  `bool_or(f."业务类型" = '…')`, a rank within a group), registered on the scope and read by
  the expression. Every condition is definite for a key without facts (a SUM over no rows
  is 0), so `not` means what it says.
- `AnnualScope` — the annual statuses of a contract key: one `FactScope` per grain, each
  LEFT JOINed by its key columns, so a status may read an annual status of another grain.

The snapshot issue adds a monthly scope (events, presence) with the same `compile_rule`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cmdm_admin.errors import CmdmError
from cmdm_admin.rules import (
    GRAIN_KEYS,
    MAX_IDENTIFIER_BYTES,
    ConfigRef,
    KeyName,
    Rule,
    RuleSet,
    Source,
)

#: Words PostgreSQL reserves (pg_get_keywords() catcode 'R' and 'T'); a plain lower-case
#: name that is one of them must still be quoted.
_RESERVED = frozenset(
    (
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "binary",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    )
)
_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")

_COMPARE_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "ne": "<>"}


class CompileError(CmdmError):
    """A rule cannot be turned into SQL (a bug or a rule the loader should have refused)."""


def ident(name: str) -> str:
    """`name` as a SQL identifier: bare when it is a plain lower-case non-reserved name,
    else double-quoted with inner quotes doubled."""
    if not isinstance(name, str) or name == "":
        raise CompileError(f"invalid identifier {name!r}: empty or not text")
    _check_text(name, "identifier")
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise CompileError(f"invalid identifier {name!r}: longer than {MAX_IDENTIFIER_BYTES} bytes")
    if _PLAIN.fullmatch(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str) -> str:
    """`schema.table` (as written in rules/) as a schema-qualified SQL name."""
    schema, _, name = table.partition(".")
    return f"{ident(schema)}.{ident(name)}"


def literal(value: Any) -> str:
    """A typed SQL literal for a YAML scalar: text, numeric or boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}::numeric"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CompileError(f"cannot write {value} as a SQL number")
        text = format(Decimal(repr(value)), "f")
        return f"{text}::numeric"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CompileError(f"cannot write {value} as a SQL number")
        return f"{format(value, 'f')}::numeric"
    if isinstance(value, str):
        return text_literal(value) + "::text"
    raise CompileError(f"cannot write {type(value).__name__} {value!r} as a SQL literal")


def text_literal(value: str) -> str:
    """A string constant, without a cast. E'' when the text has a backslash or a `$`
    (backslashes doubled, `$` written as \\x24), so it reads the same whatever
    standard_conforming_strings says and can never close a dollar-quoted routine body."""
    _check_text(value, "text")
    quoted = value.replace("'", "''")
    if "\\" in value or "$" in value:
        return "E'" + quoted.replace("\\", "\\\\").replace("$", "\\x24") + "'"
    return "'" + quoted + "'"


def _check_text(value: str, what: str) -> None:
    if "\x00" in value:
        raise CompileError(f"{what} {value!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CompileError(f"{what} {value!r} is not valid Unicode text") from None


# --- scopes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopN:
    """A rank column: the grain key among the `n` largest by SUM(`field`) within `within`."""

    column: str  # alias of the boolean column on the grain's aggregate row
    field: str
    n: int
    within: str


@dataclass
class FactScope:
    """A grain's rows aggregated over the facts of one month (alias `f` in the aggregate).

    `alias` is the name the compiled expressions read the aggregate row by; `columns` maps
    each aggregate column's alias to its SQL over `f`, in order of first use.
    """

    grain: str
    alias: str
    key_columns: dict[KeyName, str]
    columns: dict[str, str] = field(default_factory=dict)
    top_ns: list[TopN] = field(default_factory=list)
    #: Fact columns the aggregates read, in order of first use.
    fields: dict[str, None] = field(default_factory=dict)

    @property
    def keys(self) -> tuple[KeyName, ...]:
        return GRAIN_KEYS[self.grain]

    def _column(self, preferred: str, sql: str) -> str:
        for name, existing in self.columns.items():
            if existing == sql:
                return f"{self.alias}.{ident(name)}"
        name = preferred
        if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES or name in self.columns:
            name = f"agg_{len(self.columns) + 1}"
        self.columns[name] = sql
        return f"{self.alias}.{ident(name)}"

    def sum_of(self, field_name: str) -> str:
        self.fields.setdefault(field_name)
        return self._column(f"sum_{field_name}", f"sum(f.{ident(field_name)})")

    def has_value(self, field_name: str, value: Any) -> str:
        self.fields.setdefault(field_name)
        sql = f"bool_or(f.{ident(field_name)} = {literal(value)})"
        return self._column(f"has_{field_name}_{len(self.columns) + 1}", sql)

    def top_n(self, field_name: str, n: int, within: str) -> str:
        self.fields.setdefault(field_name)
        self.fields.setdefault(within)
        for spec in self.top_ns:
            if (spec.field, spec.n, spec.within) == (field_name, n, within):
                return f"{self.alias}.{ident(spec.column)}"
        spec = TopN(f"top_{n}_by_{within}", field_name, n, within)
        if len(spec.column.encode("utf-8")) > MAX_IDENTIFIER_BYTES or any(
            t.column == spec.column for t in self.top_ns
        ):
            spec = TopN(f"top_n_{len(self.top_ns) + 1}", field_name, n, within)
        self.top_ns.append(spec)
        return f"{self.alias}.{ident(spec.column)}"


class Scope:
    """Where a rule is evaluated; each method returns the SQL of one condition there."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset

    def field_compare(self, field_name: str, op: str, value: Any, grain: str) -> str:
        raise CompileError(f"field_compare cannot be used in {self.describe()}")

    def field_equals(self, field_name: str, value: Any, grain: str) -> str:
        raise CompileError(f"field_equals cannot be used in {self.describe()}")

    def top_n(self, field_name: str, n: int, within: str, grain: str) -> str:
        raise CompileError(f"top_n cannot be used in {self.describe()}")

    def status(self, name: str, grain: str) -> str:
        raise CompileError(f"status references cannot be used in {self.describe()}")

    def condition(self, kind: str, body: Any, grain: str) -> str:
        raise CompileError(f"{kind} cannot be used in {self.describe()}")

    def describe(self) -> str:
        return type(self).__name__


class ContractScope(Scope):
    """The contract status of a key in its month: conditions read the key's own facts."""

    def __init__(self, ruleset: RuleSet, facts: FactScope) -> None:
        super().__init__(ruleset)
        self.facts = facts

    def describe(self) -> str:
        return "the contract status"

    def field_compare(self, field_name: str, op: str, value: Any, grain: str) -> str:
        return compare_sql(self.facts.sum_of(field_name), op, value)

    def field_equals(self, field_name: str, value: Any, grain: str) -> str:
        return f"coalesce({self.facts.has_value(field_name, value)}, false)"


class AnnualScope(Scope):
    """Annual statuses of a key at the reference month: one aggregate row per grain (alias
    ref_<grain>). A status of a coarser grain is read from its stored decision (alias
    a_<grain>, see DECISION_ALIAS), or its value over no facts when its key has none."""

    def __init__(self, ruleset: RuleSet, key_columns: dict[KeyName, str]) -> None:
        super().__init__(ruleset)
        self.grains: dict[str, FactScope] = {}
        self.key_columns = key_columns
        self._compiling: list[str] = []

    def describe(self) -> str:
        return "an annual status"

    def grain(self, grain: str) -> FactScope:
        if grain not in self.grains:
            self.grains[grain] = FactScope(grain, f"ref_{grain}", self.key_columns)
        return self.grains[grain]

    def field_compare(self, field_name: str, op: str, value: Any, grain: str) -> str:
        return compare_sql(self.grain(grain).sum_of(field_name), op, value)

    def field_equals(self, field_name: str, value: Any, grain: str) -> str:
        return f"coalesce({self.grain(grain).has_value(field_name, value)}, false)"

    def top_n(self, field_name: str, n: int, within: str, grain: str) -> str:
        return f"coalesce({self.grain(grain).top_n(field_name, n, within)}, false)"

    def status(self, name: str, grain: str) -> str:
        status = self.ruleset.statuses[name]
        if not status.annual:
            raise CompileError(f"an annual status cannot read the monthly status {name!r}")
        if name in self._compiling:
            raise CompileError(f"status {name!r} refers to itself")
        target = status.decided_grain
        if target != grain:
            if GRAIN_ORDER.index(target) > GRAIN_ORDER.index(grain):
                raise CompileError(
                    f"an annual status of grain {grain!r} cannot read {name!r}, of the finer "
                    f"grain {target!r}"
                )
            alias = DECISION_ALIAS.format(grain=target)
            return f"coalesce({alias}.{ident(name)}, {self.absent(name)})"
        self._compiling.append(name)
        try:
            return compile_rule(status.rule, self, grain)
        finally:
            self._compiling.pop()

    def absent(self, name: str) -> str:
        """The value of annual status `name` for a key of its grain that had no facts at the
        reference month (so no decided row): its rule over a row of NULL aggregates."""
        status = self.ruleset.statuses[name]
        grain = status.decided_grain
        scope = AnnualScope(self.ruleset, self.key_columns)
        scope._compiling = [*self._compiling, name]
        facts = scope.grain(grain)
        expr = compile_rule(status.rule, scope, grain)
        columns = [
            f"NULL::{'boolean' if sql.startswith('bool_or(') else 'numeric'} AS {ident(n)}"
            for n, sql in facts.columns.items()
        ] + [f"NULL::boolean AS {ident(t.column)}" for t in facts.top_ns]
        return f"(SELECT {expr} FROM (SELECT {', '.join(columns) or 'NULL'}) {facts.alias})"


#: Grains from coarsest to finest.
GRAIN_ORDER = ("company", "product_line", "plan")
#: How compiled annual rules name the decided row of a grain (a stored or scratch table).
DECISION_ALIAS = "a_{grain}"


@dataclass(frozen=True)
class MonthRow:
    """What a monthly status can read about its row, as SQL the template provides.

    `alias`: the row being evaluated (it has the grain's key columns, named by their
    logical key name); `month_start` / `month_end`: SQL of the snapshot month's first and
    last day; `present` / `present_before` / `seen_before`: booleans — the row's key has
    facts this month / in the previous loaded month / in any earlier month; `annual`:
    alias of the row's annual statuses (bool_or over the versions covering the month).
    """

    alias: str
    month_start: str
    month_end: str
    present: str
    present_before: str
    seen_before: str
    annual: str


class MonthlyScope(Scope):
    """A monthly status as of the snapshot month: events, presence, the month's facts
    aggregated at the status's grain, annual statuses, other monthly statuses (inlined)."""

    def __init__(self, ruleset: RuleSet, row: MonthRow, facts: dict[str, FactScope]) -> None:
        super().__init__(ruleset)
        self.row = row
        self.facts = facts  # grain -> aggregates of the month's facts at that grain
        self._compiling: list[str] = []
        #: Grains at which first_appearance was compiled: a change to one month's facts
        #: moves those first appearances (the sync reports the months that depend on it).
        self.first_appearance_grains: set[str] = set()
        #: How far an events row is seen, per events condition compiled: ('year', 0) for
        #: exists_in_year, ('months', n) for exists_in_window of n months.
        self.event_reach: set[tuple[str, int]] = set()

    def describe(self) -> str:
        return "a monthly status"

    def _facts(self, grain: str) -> FactScope:
        if grain not in self.facts:
            raise CompileError(f"no aggregates of the month's facts at grain {grain!r}")
        return self.facts[grain]

    def field_compare(self, field_name: str, op: str, value: Any, grain: str) -> str:
        return compare_sql(self._facts(grain).sum_of(field_name), op, value)

    def field_equals(self, field_name: str, value: Any, grain: str) -> str:
        return f"coalesce({self._facts(grain).has_value(field_name, value)}, false)"

    def status(self, name: str, grain: str) -> str:
        status = self.ruleset.statuses[name]
        if status.annual:
            return f"coalesce({self.row.annual}.{ident(name)}, false)"
        if name in self._compiling:
            raise CompileError(f"status {name!r} refers to itself")
        self._compiling.append(name)
        try:
            # an unpinned status read by another is evaluated at the reader's grain
            return compile_rule(status.rule, self, status.grain_at(grain))
        finally:
            self._compiling.pop()

    def condition(self, kind: str, body: Any, grain: str) -> str:
        row = self.row
        if kind == "disappeared":
            return f"({row.present_before} AND NOT {row.present})"
        if kind == "first_appearance":
            self.first_appearance_grains.add(grain)
            return f"({row.present} AND NOT {row.seen_before})"
        if kind in ("exists_in_year", "exists_in_window"):
            source = self.ruleset.sources[body.source]
            keys = body.match or tuple(k for k in GRAIN_KEYS[grain] if k in source.keys.names)
            match = " AND ".join(
                f"e.{ident(source.keys.column(k))} = {row.alias}.{ident(k)}" for k in keys
            )
            date = f"e.{ident(source.date_field)}"
            if kind == "exists_in_year":
                self.event_reach.add(("year", 0))
                since = f"pg_catalog.date_trunc('year', {row.month_start})::date"
            else:
                self.event_reach.add(("months", body.months))
                since = f"({row.month_start} - INTERVAL '{body.months - 1} months')::date"
            return (
                f"EXISTS (SELECT FROM {qualified(source.table)} e WHERE {match} "
                f"AND {date} >= {since} AND {date} <= {row.month_end})"
            )
        raise CompileError(f"{kind} cannot be used in {self.describe()}")


def compare_sql(aggregate: str, op: str, value: Any) -> str:
    """SUM compared with a number; a key without facts sums to 0."""
    if op not in _COMPARE_OPS:
        raise CompileError(f"unknown comparison {op!r}")
    return f"coalesce({aggregate}, 0) {_COMPARE_OPS[op]} {literal(value)}"


def compile_rule(rule: Rule, scope: Scope, grain: str) -> str:
    """One SQL boolean expression for `rule`, evaluated at `grain` in `scope`."""
    kind, body = rule.kind, rule.body
    ruleset = scope.ruleset
    if kind in ("all", "any"):
        parts = [compile_rule(child, scope, grain) for child in body]
        if len(parts) == 1:
            return parts[0]
        joiner = " AND " if kind == "all" else " OR "
        return "(" + joiner.join(parts) + ")"
    if kind == "not":
        return f"NOT {_atom(compile_rule(body, scope, grain))}"
    if kind == "field_compare":
        return scope.field_compare(body.field, body.op, _number(ruleset, body.value), grain)
    if kind == "field_equals":
        return scope.field_equals(body.field, body.value, grain)
    if kind == "top_n":
        return scope.top_n(body.field, int(_number(ruleset, body.n)), body.within, grain)
    if kind == "status":
        return _atom(scope.status(body, grain))
    return scope.condition(kind, body, grain)


def _number(ruleset: RuleSet, value: int | float | ConfigRef) -> int | float:
    if isinstance(value, ConfigRef):
        if value.config not in ruleset.config:
            raise CompileError(f"unknown config value {value.config!r}")
        return ruleset.config[value.config]
    return value


def _atom(sql: str) -> str:
    """`sql` wrapped in parentheses unless it already is one unit."""
    if sql.startswith("(") and _balanced_prefix(sql) == len(sql):
        return sql
    if re.fullmatch(r"[\w.\"]+", sql):
        return sql
    return f"({sql})"


def _balanced_prefix(sql: str) -> int:
    """Length of the parenthesised group `sql` starts with (quotes respected)."""
    depth, index, quote = 0, 0, None
    while index < len(sql):
        char = sql[index]
        if quote:
            if char == quote:
                if index + 1 < len(sql) and sql[index + 1] == quote:
                    index += 1
                else:
                    quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return -1


def source_key_columns(source: Source) -> dict[KeyName, str]:
    """Logical key name → column of `source`."""
    return {name: source.keys.column(name) for name in source.keys.names}
