"""Check validated rules against a live PostgreSQL catalog (DESIGN §5, "semantic checks").

`cmdm_admin.loader` checks what the rule files say on their own; this module checks what
they say about the database: every table and column they name exists, with a type the
generated SQL can use. Each problem is a `RuleIssue` placed at the YAML key that names the
table or column, so it prints like the loader's own:

    rules/config.yml:18:12: sources.award.table: table customer."当年中标x" does not exist
    (did you mean customer."当年中标"?)

The catalog is read in two queries, whatever the size of the rules: every schema (for
"did you mean"), the relations of the schemas the rules name, and the columns of the tables
they name, then PostgreSQL's keywords (to quote names in messages as `quote_ident` would).
Names travel only as query parameters; nothing is written.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cmdm_admin.loader import KeyPath, RuleIssue, issue_at
from cmdm_admin.rules import EVENT_CONDITIONS, KeyName, Rule, RuleSet, Source

#: pg_type.typcategory of the types a value or an aggregate needs.
NUMERIC, STRING, BOOLEAN = "N", "S", "B"

#: Relation kinds the generated SQL can read from: tables, partitioned tables, views,
#: materialized views, foreign tables.
_READABLE_RELKINDS = ["r", "p", "v", "m", "f"]

_CATALOG_SQL = """
SELECT n.nspname, c.relname, a.attname,
       pg_catalog.format_type(a.atttypid, NULL),
       pg_catalog.format_type(base.oid, NULL),
       base.typcategory
  FROM pg_catalog.pg_namespace n
  LEFT JOIN pg_catalog.pg_class c
         ON c.relnamespace = n.oid
        AND c.relkind::text = ANY (%(relkinds)s::text[])
        AND n.nspname = ANY (%(schemas)s::text[])
  LEFT JOIN unnest(%(schemas)s::text[], %(tables)s::text[]) AS wanted (nspname, relname)
         ON wanted.nspname = n.nspname AND wanted.relname = c.relname
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = c.oid AND wanted.relname IS NOT NULL
        AND a.attnum > 0 AND NOT a.attisdropped
  -- a domain's base type (through domains over domains): what the column holds
  LEFT JOIN LATERAL (
        WITH RECURSIVE chain AS (
            SELECT t.oid, t.typbasetype, t.typcategory
              FROM pg_catalog.pg_type t
             WHERE t.oid = a.atttypid
            UNION ALL
            SELECT b.oid, b.typbasetype, b.typcategory
              FROM chain JOIN pg_catalog.pg_type b ON b.oid = chain.typbasetype
        )
        SELECT chain.oid, chain.typcategory FROM chain WHERE chain.typbasetype = 0
  ) AS base ON true
"""

#: Keywords `quote_ident` quotes: every category but unreserved.
_KEYWORDS_SQL = "SELECT word FROM pg_catalog.pg_get_keywords() WHERE catcode <> 'U'"

_SAFE_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Column:
    """A column as the catalog describes it."""

    name: str
    #: format_type of the column's type without modifiers: 'numeric', 'character varying'.
    type: str
    #: The same for the base type when the column's type is a domain, else equal to `type`.
    base_type: str
    #: pg_type.typcategory: N numeric, S string, B boolean, D date/time, ...
    category: str

    def describe(self) -> str:
        return self.type if self.type == self.base_type else f"{self.type} (a {self.base_type})"


@dataclass
class Catalog:
    """The part of the catalog the rules talk about."""

    schemas: set[str] = field(default_factory=set)
    #: Relations of the schemas the rules name, by schema.
    tables: dict[str, set[str]] = field(default_factory=dict)
    #: Columns of the tables the rules name that exist, by (schema, table).
    columns: dict[tuple[str, str], dict[str, Column]] = field(default_factory=dict)
    #: Keywords quote_ident quotes.
    keywords: frozenset[str] = frozenset()

    @classmethod
    def read(cls, conn: psycopg.Connection, tables: Iterable[tuple[str, str]]) -> Catalog:
        wanted = list(dict.fromkeys(tables))
        catalog = cls()
        with conn.transaction():
            rows = conn.execute(
                _CATALOG_SQL,
                {
                    "relkinds": _READABLE_RELKINDS,
                    "schemas": [schema for schema, _ in wanted],
                    "tables": [table for _, table in wanted],
                },
            ).fetchall()
            catalog.keywords = frozenset(w for (w,) in conn.execute(_KEYWORDS_SQL).fetchall())
        for schema, table, column, type_name, base_type, category in rows:
            catalog.schemas.add(schema)
            if table is None:
                continue
            catalog.tables.setdefault(schema, set()).add(table)
            if column is not None:
                catalog.columns.setdefault((schema, table), {})[column] = Column(
                    column, type_name, base_type, category
                )
            elif (schema, table) in wanted:  # a table without columns (rare, but legal)
                catalog.columns.setdefault((schema, table), {})
        return catalog

    def quote(self, name: str) -> str:
        """`name` as PostgreSQL's quote_ident writes it: bare when it is a lower-case
        identifier and not a keyword, else double-quoted."""
        if _SAFE_IDENTIFIER.fullmatch(name) and name not in self.keywords:
            return name
        return '"' + name.replace('"', '""') + '"'

    def qualified(self, schema: str, table: str) -> str:
        return f"{self.quote(schema)}.{self.quote(table)}"


def check_against_catalog(ruleset: RuleSet, conn: psycopg.Connection) -> list[RuleIssue]:
    """Every problem of `ruleset` against the catalog of `conn`'s database, in file order
    (an empty list when the rules fit). Reads only; `ruleset` comes from `load_rules`."""
    tables = [(s.table_schema, s.table_name) for s in ruleset.sources.values()]
    checker = _Checker(ruleset, Catalog.read(conn, tables))
    checker.run()
    unique = dict.fromkeys(checker.issues)
    return sorted(unique, key=lambda i: (i.file, i.line or 0, i.column or 0))


class _Checker:
    def __init__(self, ruleset: RuleSet, catalog: Catalog) -> None:
        self.ruleset = ruleset
        self.catalog = catalog
        self.issues: list[RuleIssue] = []

    def add(self, path: KeyPath, message: str) -> None:
        self.issues.append(issue_at(self.ruleset, path, message))

    # lookups

    def label(self, source: Source) -> str:
        return self.catalog.qualified(source.table_schema, source.table_name)

    def columns_of(self, source: Source) -> dict[str, Column] | None:
        """The columns of `source`'s table; None when it does not exist (reported once, at
        the source)."""
        return self.catalog.columns.get((source.table_schema, source.table_name))

    def column(
        self, path: KeyPath, source: Source, name: str, columns: dict[str, Column]
    ) -> Column | None:
        """The column `name` of `source`'s table, or None after reporting it missing."""
        found = columns.get(name)
        if found is None:
            close = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.6)
            hint = f" (did you mean {self.catalog.quote(close[0])}?)" if close else ""
            self.add(
                path,
                f"column {self.catalog.quote(name)} of {self.label(source)} does not exist{hint}",
            )
        return found

    def numeric(
        self,
        path: KeyPath,
        source: Source,
        name: str,
        columns: dict[str, Column],
        needs: str,
    ) -> None:
        found = self.column(path, source, name, columns)
        if found is not None and found.category != NUMERIC:
            self.add(path, f"column {self.catalog.quote(name)} is {found.describe()}; {needs}")

    # the checks

    def run(self) -> None:
        for name, source in self.ruleset.sources.items():
            self.check_source(name, source)
        facts = self.ruleset.sources[self.ruleset.contract.source]
        columns = self.columns_of(facts)
        if columns is None:
            return  # the facts table is missing: reported at its source
        contract = self.ruleset.contract
        self.numeric(
            ("contract", "measure"),
            facts,
            contract.measure,
            columns,
            "the measure must be numeric",
        )
        self.column(("contract", "branch_field"), facts, contract.branch_field, columns)
        for index, case in enumerate(contract.status.cases):
            self.check_rule(("contract", "status", "cases", index, "when"), case.when, facts)
        for name, status in self.ruleset.statuses.items():
            self.check_rule(("statuses", name, "rule"), status.rule, facts)

    def check_source(self, name: str, source: Source) -> None:
        base: KeyPath = ("sources", name)
        columns = self.columns_of(source)
        if columns is None:
            self.add((*base, "table"), self.missing_table(source))
            return
        for key in source.keys.names:
            self.column((*base, "keys", key), source, source.keys.column(key), columns)
        date = self.column((*base, "date_field"), source, source.date_field, columns)
        if date is not None and date.base_type != "date":
            self.add(
                (*base, "date_field"),
                f"column {self.catalog.quote(date.name)} is {date.describe()}; "
                "the date field must be date",
            )

    def missing_table(self, source: Source) -> str:
        schema, table = source.table_schema, source.table_name
        message = f"table {self.label(source)} does not exist"
        if schema not in self.catalog.schemas:
            candidates = [
                s
                for s in self.catalog.schemas
                if not s.startswith("pg_") and s != "information_schema"
            ]
            close = difflib.get_close_matches(schema, candidates, n=1, cutoff=0.6)
            hint = f"; did you mean {self.catalog.quote(close[0])}?" if close else ""
            return f"{message} (no schema {self.catalog.quote(schema)}{hint})"
        close = difflib.get_close_matches(
            table, sorted(self.catalog.tables.get(schema, ())), n=1, cutoff=0.6
        )
        if close:
            message += f" (did you mean {self.catalog.qualified(schema, close[0])}?)"
        return message

    def check_rule(self, base: KeyPath, rule: Rule, facts: Source) -> None:
        columns = self.columns_of(facts)
        assert columns is not None
        for rel, node in rule.walk():
            kind = node.kind
            here = (*base, *rel, kind)
            body: Any = node.body
            if kind == "field_compare":
                needs = "field_compare sums it, so it must be numeric"
                self.numeric((*here, "field"), facts, body.field, columns, needs)
            elif kind == "top_n":
                needs = "top_n ranks by its sum, so it must be numeric"
                self.numeric((*here, "field"), facts, body.field, columns, needs)
                self.column((*here, "within"), facts, body.within, columns)
            elif kind == "field_equals":
                found = self.column((*here, "field"), facts, body.field, columns)
                if found is not None:
                    self.check_value(here, found, body.value)
            elif kind in EVENT_CONDITIONS and body.match is not None:
                self.check_match(here, body.source, body.match)

    def check_value(self, path: KeyPath, column: Column, value: str | int | float | bool) -> None:
        if isinstance(value, bool):
            needs, shown, what = BOOLEAN, str(value).lower(), "a boolean"
        elif isinstance(value, str):
            needs, shown, what = STRING, "'" + value.replace("'", "''") + "'", "a string"
        else:
            needs, shown, what = NUMERIC, str(value), "a number"
        if column.category != needs:
            self.add(
                path,
                f"column {self.catalog.quote(column.name)} is {column.describe()}, "
                f"but the value {shown} is {what}",
            )

    def check_match(self, path: KeyPath, source_name: str, match: tuple[KeyName, ...]) -> None:
        source = self.ruleset.sources[source_name]
        columns = self.columns_of(source)
        if columns is None:
            return  # the table is missing: reported at the source
        for index, key in enumerate(match):
            column = source.keys.column(key)
            if column not in columns:
                self.add(
                    (*path, "match", index),
                    f"key {key!r} of source {source_name!r} is column "
                    f"{self.catalog.quote(column)}, which does not exist in {self.label(source)}",
                )
