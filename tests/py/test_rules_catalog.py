"""The rules checked against a live catalog: every table and column they name exists, with a
type the generated SQL can use; each problem located at the YAML key that names it."""

from __future__ import annotations

import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dbutil import execute, query, with_database
from typer.testing import CliRunner

from cmdm_admin import migrate
from cmdm_admin.catalog import Catalog, check_against_catalog
from cmdm_admin.cli import app
from cmdm_admin.db import mask_url
from cmdm_admin.loader import format_issue, load_rules, locate
from cmdm_admin.project import current_project
from cmdm_admin.rules import RuleSet

runner = CliRunner()

#: An events table like customer."当年流失" whose date column is a timestamp.
TIMESTAMP_TABLE = """
CREATE TABLE customer."流失_ts" (
    company_id    varchar,
    "产品线代码"  varchar(20),
    "计划代码"    varchar,
    "上报月份"    timestamptz
)"""

#: This checkout, found before any test changes the working directory.
PROJECT = current_project()


@pytest.fixture(scope="module")
def catalog_url(admin_url: str) -> Iterator[str]:
    """One database at the head revision for the whole module: the checks only read."""
    name = f"cmdm_test_{uuid.uuid4().hex[:12]}"
    execute(admin_url, f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    try:
        migrate.upgrade(url, "heads", PROJECT.migrations_dir)
        execute(url, TIMESTAMP_TABLE)
        yield url
    finally:
        execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Rules:
    """A copy of the shipped rules/ in a temporary working directory, to edit."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "rules"
        shutil.copytree(PROJECT.rules_dir, self.dir)

    def text(self, name: str) -> str:
        return (self.dir / name).read_text(encoding="utf-8")

    def edit(self, name: str, old: str, new: str, occurrence: int = 1) -> None:
        """Replace the `occurrence`-th `old` of the file with `new`."""
        text = self.text(name)
        offset = -1
        for _ in range(occurrence):
            offset = text.index(old, offset + 1)
        (self.dir / name).write_text(
            text[:offset] + new + text[offset + len(old) :], encoding="utf-8"
        )

    def add_status(self, name: str, rule: str, *, annual: bool = False) -> None:
        grain = "company" if annual else "product_line"
        block = f"{name}:\n  description: test\n  grain: {grain}\n"
        block += "  annual: true\n" if annual else ""
        block += "  rule:\n" + textwrap.indent(textwrap.dedent(rule).strip("\n"), "    ")
        text = self.text("statuses.yml").rstrip("\n") + "\n\n"
        (self.dir / "statuses.yml").write_text(
            text + textwrap.indent(block, "  ") + "\n", encoding="utf-8"
        )

    def at(self, name: str, token: str, occurrence: int = 1, shift: int = 0) -> str:
        """`rules/<name>:line:col` of the `occurrence`-th `token` of the file (`shift`
        characters further right)."""
        text = self.text(name)
        offset = -1
        for _ in range(occurrence):
            offset = text.index(token, offset + 1)
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1 + shift
        return f"rules/{name}:{line}:{column}"

    def check(self, url: str) -> list[str]:
        ruleset = load_rules(self.dir)
        with psycopg.connect(url) as conn:
            return [format_issue(issue) for issue in check_against_catalog(ruleset, conn)]


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rules:
    monkeypatch.chdir(tmp_path)
    return Rules(tmp_path)


# --- rules that fit -----------------------------------------------------------------------


def test_shipped_rules_match_a_migrated_database(catalog_url: str) -> None:
    ruleset = load_rules(PROJECT.rules_dir)
    with psycopg.connect(catalog_url) as conn:
        assert check_against_catalog(ruleset, conn) == []


COMPATIBLE_INPUT_TABLES = """
CREATE SCHEMA business;
CREATE SCHEMA customer;
CREATE TABLE business."规模明细" (
    "月度" date, "计划代码" text, company_id text, "产品线代码" character(5),
    "业务类型" text, "组合代码" text,
    "期末资产规模" double precision, "期初资产规模" real, "供款" bigint,
    "机构代码" text, "机构名称" text);
CREATE TABLE customer."当年中标" (
    company_id text, "产品线代码" text, "计划代码" text, "上报月份" date);
CREATE TABLE customer."当年流失" (
    company_id text, "产品线代码" text, "计划代码" text, "上报月份" date);
"""


def test_compatible_column_types_of_the_etl_fit(rules: Rules, database_url: str) -> None:
    execute(database_url, COMPATIBLE_INPUT_TABLES)
    migrate.upgrade(database_url)  # the data contract accepts them too
    rules.add_status(
        "is_plain",
        "all:\n  - field_equals: {field: 业务类型, value: 企年受托}\n"
        "  - field_equals: {field: 供款, value: 0}\n",
    )
    assert rules.check(database_url) == []


# --- one test per kind of problem ---------------------------------------------------------


def test_missing_table_suggests_one_of_the_same_schema(rules: Rules, catalog_url: str) -> None:
    rules.edit("config.yml", "table: customer.当年中标", "table: customer.当年中标x")
    assert rules.check(catalog_url) == [
        f"{rules.at('config.yml', 'customer.当年中标x')}: sources.award.table: "
        'table customer."当年中标x" does not exist (did you mean customer."当年中标"?)'
    ]


def test_missing_schema_suggests_a_schema(rules: Rules, catalog_url: str) -> None:
    rules.edit("config.yml", "table: business.规模明细", "table: busines.规模明细")
    # the facts table is missing: nothing else is checked against it
    assert rules.check(catalog_url) == [
        f"{rules.at('config.yml', 'busines.规模明细')}: sources.performance.table: "
        'table busines."规模明细" does not exist (no schema busines; did you mean business?)'
    ]


def test_missing_key_column_and_date_field(rules: Rules, catalog_url: str) -> None:
    rules.edit("config.yml", "plan_code: 计划代码", "plan_code: 计划代码x", occurrence=2)
    rules.edit("config.yml", "date_field: 上报月份", "date_field: 上报月", occurrence=2)
    at_date = rules.at("config.yml", "date_field: 上报月\n", shift=len("date_field: "))
    assert rules.check(catalog_url) == [
        f"{rules.at('config.yml', '计划代码x')}: sources.award.keys.plan_code: "
        'column "计划代码x" of customer."当年中标" does not exist (did you mean "计划代码"?)',
        f"{at_date}: sources.loss.date_field: "
        'column "上报月" of customer."当年流失" does not exist (did you mean "上报月份"?)',
    ]


def test_date_field_must_be_date(rules: Rules, catalog_url: str) -> None:
    rules.edit("config.yml", "date_field: 月度", "date_field: 计划代码")
    rules.edit("config.yml", "table: customer.当年流失", "table: customer.流失_ts")
    assert rules.check(catalog_url) == [
        f"{rules.at('config.yml', '计划代码')}: sources.performance.date_field: "
        'column "计划代码" is character varying; the date field must be date',
        f"{rules.at('config.yml', '上报月份', occurrence=2)}: sources.loss.date_field: "
        'column "上报月份" is timestamp with time zone; the date field must be date',
    ]


def test_contract_measure_and_branch_field(rules: Rules, catalog_url: str) -> None:
    rules.edit("contract.yml", "measure: 期末资产规模", "measure: 机构名称")
    rules.edit("contract.yml", "branch_field: 机构代码", "branch_field: 机构编码")
    assert rules.check(catalog_url) == [
        f"{rules.at('contract.yml', '机构名称')}: contract.measure: "
        'column "机构名称" is character varying; the measure must be numeric',
        f"{rules.at('contract.yml', '机构编码')}: contract.branch_field: "
        'column "机构编码" of business."规模明细" does not exist (did you mean "机构代码"?)',
    ]


def test_compared_and_ranked_fields_must_exist_and_be_numeric(
    rules: Rules, catalog_url: str
) -> None:
    rules.edit("contract.yml", "{field: 期末资产规模, op: gt", "{field: 期末资产, op: gt")
    rules.edit("statuses.yml", "top_n: {field: 期末资产规模", "top_n: {field: 组合代码")
    rules.edit("statuses.yml", "within: 机构代码", "within: 分公司")
    at_top_n = rules.at("statuses.yml", "组合代码")
    assert rules.check(catalog_url) == [
        f"{rules.at('contract.yml', '期末资产,')}: "
        "contract.status.cases[0].when.field_compare.field: "
        'column "期末资产" of business."规模明细" does not exist (did you mean "期末资产规模"?)',
        f"{at_top_n}: statuses.is_strategic.rule.any[1].top_n.field: "
        'column "组合代码" is character varying; top_n ranks by its sum, so it must be numeric',
        f"{rules.at('statuses.yml', '分公司')}: statuses.is_strategic.rule.any[1].top_n.within: "
        'column "分公司" of business."规模明细" does not exist',
    ]


def test_field_compare_on_a_text_column(rules: Rules, catalog_url: str) -> None:
    rules.edit("statuses.yml", "{field: 期末资产规模, op: le", "{field: 业务类型, op: le")
    assert rules.check(catalog_url) == [
        f"{rules.at('statuses.yml', '业务类型')}: statuses.is_churned.rule.any[1]"
        '.field_compare.field: column "业务类型" is character varying; '
        "field_compare sums it, so it must be numeric"
    ]


def test_field_equals_value_must_fit_the_column(rules: Rules, catalog_url: str) -> None:
    rules.add_status(
        "is_x",
        """
        all:
          - field_equals: {field: 期末资产规模, value: abc}
          - field_equals: {field: 业务类型, value: 5}
          - field_equals: {field: 机构代码, value: true}
          - field_equals: {field: 业务类型, value: "it's"}
          - field_equals: {field: 期末资产规模, value: 0.5}
          - field_equals: {field: 组合代码x, value: P1}
        """,
    )
    here = "statuses.is_x.rule.all"
    assert rules.check(catalog_url) == [
        f"{rules.at('statuses.yml', '{field: 期末资产规模, value: abc}')}: {here}[0].field_equals: "
        "column \"期末资产规模\" is numeric, but the value 'abc' is a string",
        f"{rules.at('statuses.yml', '{field: 业务类型, value: 5}')}: {here}[1].field_equals: "
        'column "业务类型" is character varying, but the value 5 is a number',
        f"{rules.at('statuses.yml', '{field: 机构代码, value: true}')}: {here}[2].field_equals: "
        'column "机构代码" is character varying, but the value true is a boolean',
        f"{rules.at('statuses.yml', '组合代码x')}: {here}[5].field_equals.field: "
        'column "组合代码x" of business."规模明细" does not exist (did you mean "组合代码"?)',
    ]


def test_match_key_whose_column_is_missing(rules: Rules, catalog_url: str) -> None:
    rules.edit("config.yml", "product_line_code: 产品线代码", "product_line_code: 产品线", 2)
    rules.add_status(
        "is_won_by_company",
        "exists_in_year: {source: award, match: [company_id, product_line_code]}",
    )
    assert rules.check(catalog_url) == [
        f"{rules.at('config.yml', '产品线}')}: sources.award.keys.product_line_code: "
        'column "产品线" of customer."当年中标" does not exist (did you mean "产品线代码"?)',
        f"{rules.at('statuses.yml', 'product_line_code]')}: "
        "statuses.is_won_by_company.rule.exists_in_year.match[1]: key 'product_line_code' of "
        'source \'award\' is column "产品线", which does not exist in customer."当年中标"',
    ]


# --- names are data, never SQL ------------------------------------------------------------

HOSTILE = 'x"; DROP TABLE business."规模明细"; --'


def test_hostile_names_are_reported_and_run_nothing(rules: Rules, catalog_url: str) -> None:
    rules.edit("statuses.yml", "{field: 期末资产规模, op: le", f"{{field: '{HOSTILE}', op: le")
    rules.edit("config.yml", "customer.当年流失", '"customer.x\'); DROP TABLE t; --"')
    at_table = rules.at("config.yml", '"customer.x')
    at_field = rules.at("statuses.yml", "'x\"")
    assert rules.check(catalog_url) == [
        f'{at_table}: sources.loss.table: table customer."x\'); DROP TABLE t; --" does not exist',
        f"{at_field}: statuses.is_churned.rule.any[1].field_compare.field: "
        'column "x""; DROP TABLE business.""规模明细""; --" of business."规模明细" does not exist',
    ]
    assert query(catalog_url, "SELECT to_regclass(%s) IS NOT NULL", ('business."规模明细"',)) == [
        (True,)
    ]


def test_messages_quote_names_like_quote_ident(catalog_url: str) -> None:
    names = [
        "customer",
        "规模明细",
        "order",
        "user",
        "between",
        "name",
        "Upper",
        "a b",
        'q"t',
        "_x1",
        "1x",
    ]
    with psycopg.connect(catalog_url) as conn:
        catalog = Catalog.read(conn, [])
        expected = [conn.execute("SELECT quote_ident(%s)", (n,)).fetchone()[0] for n in names]
    assert [catalog.quote(n) for n in names] == expected


class CountingConnection:
    """A connection that counts the statements sent through it."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        return self.conn.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_two_queries_whatever_the_number_of_conditions(rules: Rules, catalog_url: str) -> None:
    conditions = "".join(
        f"  - field_compare: {{field: 期末资产规模{'x' * (i % 2)}, op: gt, value: {i}}}\n"
        for i in range(40)
    )
    rules.add_status("is_many", "all:\n" + conditions)
    with psycopg.connect(catalog_url) as conn:
        counting = CountingConnection(conn)
        issues = check_against_catalog(load_rules(rules.dir), counting)  # type: ignore[arg-type]
    assert len(issues) == 20
    assert counting.statements == 2


def test_locate_finds_keys_and_values(rules: Rules) -> None:
    ruleset = load_rules(rules.dir)
    value = rules.at("config.yml", "customer.当年中标")
    key = rules.at("config.yml", "table: customer.当年中标")
    assert ":".join(map(str, locate(ruleset, ("sources", "award", "table")))) == value
    assert ":".join(map(str, locate(ruleset, ("sources", "award", "table"), "key"))) == key
    # a key the rules do not write (a default) is placed at its nearest parent
    assert locate(ruleset, ("statuses", "is_new", "annual")) == locate(
        ruleset, ("statuses", "is_new")
    )
    # a rule set built by hand from the same texts is located from them
    fields = ("config", "sources", "contract", "statuses", "files", "origin")
    by_hand = RuleSet(**{name: getattr(ruleset, name) for name in fields})
    assert locate(by_hand, ("sources", "award", "table")) == locate(
        ruleset, ("sources", "award", "table")
    )


# --- cmdm validate-rules --database-url ---------------------------------------------------


def test_cli_rules_matching_the_catalog(rules: Rules, catalog_url: str) -> None:
    result = runner.invoke(
        app, ["validate-rules", "--rules-dir", str(rules.dir), "--database-url", catalog_url]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "rules/ OK: 3 files, 3 sources, 7 statuses (2 annual), on_missing=suspend"
        f" — matches the catalog of {mask_url(catalog_url)}"
    )


def test_cli_reports_catalog_problems_located(rules: Rules, catalog_url: str) -> None:
    rules.edit("statuses.yml", "{field: 期末资产规模, op: le", "{field: 期末规模, op: le")
    result = runner.invoke(
        app, ["validate-rules", "--rules-dir", str(rules.dir), "--database-url", catalog_url]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"{rules.at('statuses.yml', '期末规模')}: "
        "statuses.is_churned.rule.any[1].field_compare.field: "
        'column "期末规模" of business."规模明细" does not exist (did you mean "期末资产规模"?)',
        "Error: 1 problem in the rules",
    ]


def test_cli_unreachable_database_is_one_error_line_without_the_password(
    rules: Rules,
) -> None:
    url = "postgresql://u:secret@127.0.0.1:1/x"
    result = runner.invoke(
        app, ["validate-rules", "--rules-dir", str(rules.dir), "--database-url", url]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot connect to"), result.output
    assert "secret" not in result.output
    assert "Traceback" not in result.output
