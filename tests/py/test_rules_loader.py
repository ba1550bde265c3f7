"""The rule loader: every kind of mistake in rules/*.yml is reported at its file, line and
column, all of them at once. Pure Python: no database."""

from __future__ import annotations

import textwrap
from graphlib import CycleError
from pathlib import Path

import pytest

from cmdm_admin.errors import CmdmError
from cmdm_admin.loader import (
    RuleIssue,
    RulesInvalid,
    format_issue,
    load_rules,
    load_rules_from_texts,
    summary,
)
from cmdm_admin.rules import ConfigRef, FieldCompare, RuleSet, Status

PROJECT = Path(__file__).resolve().parents[2]

CONFIG = """\
schema_version: 1
config:
  threshold: 100
  top: 3
  ratio: 0.5
sources:
  facts:
    kind: facts
    table: business.规模明细
    date_field: 月度
    keys: {company_id: company_id, plan_code: 计划代码, product_line_code: 产品线代码}
  award:
    kind: events
    table: customer.当年中标
    date_field: 上报月份
    keys: {company_id: company_id, product_line_code: 产品线代码}
"""

CONTRACT = """\
schema_version: 1
contract:
  source: facts
  measure: 期末资产规模
  branch_field: 机构代码
  status_values: [正常, 停缴]
  status:
    cases:
      - value: 正常
        when: {field_compare: {field: 期末资产规模, op: gt, value: 0}}
    default: 停缴
  on_missing: suspend
  suspended_status: 停缴
  tracked_columns: [contract_status, status_year, is_big]
"""

STATUSES = """\
schema_version: 1
statuses:
  is_won:
    description: won this year
    grain: product_line
    rule: {exists_in_year: {source: award}}
  is_big:
    description: big company
    grain: company
    annual: true
    rule: {field_compare: {field: 期末资产规模, op: ge, value: {config: threshold}}}
"""


class Rules:
    """A rules/ directory in a temporary working directory, holding the files above."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "rules"
        self.dir.mkdir()
        self.texts: dict[str, str] = {}
        for name, text in (
            ("config.yml", CONFIG),
            ("contract.yml", CONTRACT),
            ("statuses.yml", STATUSES),
        ):
            self.write(name, text)

    def write(self, name: str, text: str) -> str:
        self.texts[name] = text
        (self.dir / name).write_text(text, encoding="utf-8")
        return text

    def add_statuses(self, yaml_text: str) -> str:
        """Append statuses (written at the indentation of a status name) to statuses.yml."""
        return self.write(
            "statuses.yml", STATUSES + textwrap.indent(textwrap.dedent(yaml_text), "  ")
        )

    def at(self, name: str, token: str, occurrence: int = 1, shift: int = 0) -> str:
        """`rules/<name>:line:col` of the `occurrence`-th `token` in the file (`shift`
        characters further right)."""
        text = self.texts[name]
        offset = -1
        for _ in range(occurrence):
            offset = text.index(token, offset + 1)
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1 + shift
        return f"rules/{name}:{line}:{column}"

    def errors(self) -> list[str]:
        with pytest.raises(RulesInvalid) as caught:
            load_rules(self.dir)
        return [format_issue(issue) for issue in caught.value.errors]

    def error(self) -> str:
        errors = self.errors()
        assert len(errors) == 1, errors
        return errors[0]


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rules:
    monkeypatch.chdir(tmp_path)
    return Rules(tmp_path)


# --- valid rules --------------------------------------------------------------------------


def test_default_rules_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT)
    ruleset = load_rules(Path("rules"))
    assert summary(ruleset) == (
        "rules/ OK: 3 files, 3 sources, 7 statuses (2 annual), on_missing=suspend"
    )
    assert list(ruleset.annual_statuses) == ["is_strategic", "is_existing"]
    assert ruleset.facts_source_name == "performance"
    assert ruleset.facts_source.table_name == "规模明细"
    order = ruleset.status_order()
    assert order.index("is_existing") < order.index("is_new")
    assert order.index("is_winning_this_year") < order.index("is_new")
    assert set(ruleset.files) == {"config.yml", "contract.yml", "statuses.yml"}
    assert ruleset.files["statuses.yml"] == (PROJECT / "rules/statuses.yml").read_text("utf-8")


def test_minimal_rules_load_into_a_convenient_ruleset(rules: Rules) -> None:
    ruleset = load_rules(rules.dir)
    assert isinstance(ruleset, RuleSet)
    assert summary(ruleset) == (
        "rules/ OK: 3 files, 2 sources, 2 statuses (1 annual), on_missing=suspend"
    )
    assert ruleset.config == {"threshold": 100, "top": 3, "ratio": 0.5}
    assert list(ruleset.event_sources) == ["award"]
    assert ruleset.sources["award"].keys.names == ("company_id", "product_line_code")
    assert ruleset.facts_source.keys.column("plan_code") == "计划代码"
    assert ruleset.facts_source.table_schema == "business"
    assert list(ruleset.monthly_statuses) == ["is_won"]
    assert ruleset.statuses["is_big"].keys == ("company_id",)
    compare = ruleset.statuses["is_big"].rule.body
    assert isinstance(compare, FieldCompare)
    assert compare.value == ConfigRef(config="threshold")
    assert ruleset.resolve(compare.value) == 100
    assert ruleset.contract.on_missing == "suspend"
    assert ruleset.contract.status.cases[0].when.kind == "field_compare"


def test_status_order_puts_dependencies_first(rules: Rules) -> None:
    rules.add_statuses(
        """\
          is_c:
            description: c
            grain: product_line
            rule: {all: [{status: is_d}, {status: is_won}]}
          is_d:
            description: d
            grain: product_line
            rule: {not: {status: is_won}}
        """
    )
    ruleset = load_rules(rules.dir)
    assert ruleset.status_order() == ("is_won", "is_big", "is_d", "is_c")
    assert ruleset.dependencies("is_c") == ("is_d", "is_won")


def test_load_rules_from_texts_names_files_after_origin() -> None:
    texts = {"config.yml": CONFIG, "contract.yml": CONTRACT, "statuses.yml": STATUSES}
    assert load_rules_from_texts(texts).files == texts
    texts["statuses.yml"] = STATUSES.replace("source: award", "source: awrd")
    with pytest.raises(RulesInvalid) as caught:
        load_rules_from_texts(texts, origin="deployed/")
    (issue,) = caught.value.errors
    assert issue.file == "deployed/statuses.yml"


# --- file structure -----------------------------------------------------------------------


def test_missing_schema_version(rules: Rules) -> None:
    rules.write("statuses.yml", STATUSES.replace("schema_version: 1\n", ""))
    assert rules.error() == (
        "rules/statuses.yml:1:1: missing schema_version: the file must start with schema_version: 1"
    )


@pytest.mark.parametrize(("written", "shown"), [("2", "2"), ("'1'", "'1'"), ("1.0", "a number")])
def test_wrong_schema_version(rules: Rules, written: str, shown: str) -> None:
    rules.write("statuses.yml", STATUSES.replace("schema_version: 1", f"schema_version: {written}"))
    assert rules.error() == (
        f"rules/statuses.yml:1:17: schema_version: unsupported schema_version {shown}; "
        "this cmdm reads schema_version: 1"
    )


def test_extra_top_level_key(rules: Rules) -> None:
    rules.write("statuses.yml", STATUSES + "statuse: {}\n")
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'statuse:')}: statuse: unknown top-level key 'statuse' "
        "(did you mean 'statuses'?); expected: schema_version, config, sources, contract, "
        "statuses"
    )


def test_duplicate_section_across_files(rules: Rules) -> None:
    rules.write("more.yml", "schema_version: 1\nconfig:\n  other: 1\n")
    assert rules.error() == (
        "rules/more.yml:2:1: config: section 'config' is already defined in "
        "rules/config.yml:2:1; a section may appear in only one file"
    )


def test_missing_section(rules: Rules) -> None:
    (rules.dir / "contract.yml").unlink()
    del rules.texts["contract.yml"]
    assert rules.errors() == [
        "rules/: contract: no file defines the section 'contract'; each of config, sources, "
        "contract, statuses must appear in exactly one file"
    ]


def test_duplicate_mapping_key(rules: Rules) -> None:
    rules.add_statuses(
        """\
          is_x:
            description: x
            grain: plan
            grain: company
            rule: {first_appearance: {}}
        """
    )
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'grain: company', 2)}: statuses.is_x.grain: duplicate key "
        f"'grain' (first defined at line 14, column 5)"
    )


def test_yaml_tab_indentation(rules: Rules) -> None:
    rules.write("statuses.yml", "schema_version: 1\nstatuses:\n\tis_x: {}\n")
    assert rules.error() == (
        "rules/statuses.yml:3:1: invalid YAML: found character '\\t' that cannot start any "
        "token (while scanning for the next token); indent with spaces, not tabs"
    )


def test_yaml_unclosed_quote(rules: Rules) -> None:
    rules.add_statuses("  is_x:\n    description: 'abc\n")
    assert rules.error() == (
        "rules/statuses.yml:14:1: invalid YAML: found unexpected end of stream "
        "(while scanning a quoted scalar at 13:18)"
    )


def test_yaml_bad_indentation(rules: Rules) -> None:
    rules.add_statuses("  is_x:\n    description: x\n   grain: plan\n")
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'grain: plan')}: invalid YAML: expected <block end>, but "
        "found '<block mapping start>' (while parsing a block mapping at 3:3)"
    )


def test_empty_file(rules: Rules) -> None:
    rules.write("statuses.yml", "# nothing yet\n")
    assert rules.errors() == [
        "rules/statuses.yml:1:1: empty file; expected a mapping starting with schema_version: 1",
        "rules/: statuses: no file defines the section 'statuses'; each of config, sources, "
        "contract, statuses must appear in exactly one file",
    ]


def test_top_level_not_a_mapping(rules: Rules) -> None:
    rules.write("statuses.yml", "- schema_version: 1\n")
    assert rules.errors()[0] == (
        "rules/statuses.yml:1:1: expected a mapping of sections at the top level, got a list"
    )


def test_not_utf8(rules: Rules) -> None:
    (rules.dir / "statuses.yml").write_bytes(b"schema_version: 1\nstatuses:\n  \xff: 1\n")
    assert rules.error() == "rules/statuses.yml:3:3: file is not UTF-8 text"


def test_yaml_suffix_is_reported(rules: Rules) -> None:
    (rules.dir / "extra.yaml").write_text("schema_version: 1\n")
    assert rules.error() == (
        "rules/extra.yaml: rule files are named *.yml: rename it to extra.yml or move it out "
        "of rules/"
    )


def test_missing_rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RulesInvalid) as caught:
        load_rules(Path("nowhere"))
    assert [format_issue(i) for i in caught.value.errors] == ["nowhere/: rules directory not found"]


def test_empty_rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    with pytest.raises(RulesInvalid) as caught:
        load_rules(Path("rules"))
    assert [format_issue(i) for i in caught.value.errors] == ["rules/: no rule files (*.yml) found"]


def test_yaml_tags_and_merge_keys_are_rejected(rules: Rules) -> None:
    rules.add_statuses(
        """\
          is_x: !!python/object {}
          is_y:
            <<: {description: y}
        """
    )
    errors = rules.errors()
    assert errors[0] == (
        f"{rules.at('statuses.yml', '!!python')}: statuses.is_x: unsupported YAML tag "
        "'tag:yaml.org,2002:python/object'"
    )
    assert errors[1] == (
        f"{rules.at('statuses.yml', '<<')}: statuses.is_y: YAML merge keys (<<) are not supported"
    )


# --- rule nodes ---------------------------------------------------------------------------


def status(name: str, rule: str, *, grain: str = "product_line", annual: bool = False) -> str:
    lines = [f"  {name}:", f"    description: {name}", f"    grain: {grain}"]
    if annual:
        lines.append("    annual: true")
    lines.append(f"    rule: {rule}")
    return "\n".join(lines) + "\n"


def test_unknown_condition_type(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{exists_in_yaer: {source: award}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'exists_in_yaer')}: statuses.is_x.rule.exists_in_yaer: "
        "unknown condition type 'exists_in_yaer' (did you mean 'exists_in_year'?)"
    )


def test_unknown_key_in_a_condition(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{exists_in_year: {sourse: award}}"))
    assert rules.errors() == [
        f"{rules.at('statuses.yml', 'exists_in_year: {sourse')}: "
        "statuses.is_x.rule.exists_in_year: missing required key 'source'",
        f"{rules.at('statuses.yml', 'sourse')}: statuses.is_x.rule.exists_in_year.sourse: "
        "unknown key 'sourse' (did you mean 'source'?)",
    ]


def test_node_with_two_keys(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{disappeared: {}, first_appearance: {}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', '{disappeared')}: statuses.is_x.rule: a rule node has "
        "exactly one key, got 2: 'disappeared', 'first_appearance'; combine conditions with "
        "all: [...] or any: [...]"
    )


def test_node_that_is_not_a_mapping(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{any: [is_won]}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'is_won]')}: statuses.is_x.rule.any[0]: expected a rule "
        "node: a mapping with one key (a condition, all, any or not), got a string"
    )


def test_empty_all_list(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{all: []}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', '[]')}: statuses.is_x.rule.all: all needs at least one "
        "rule node, got an empty list"
    )


def test_condition_without_a_value(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{not: }"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'not')}: statuses.is_x.rule.not: not needs a value"
    )


def test_disappeared_accepts_null(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{disappeared: }"))
    rule = load_rules(rules.dir).statuses["is_x"].rule
    assert rule.kind == "disappeared"
    assert rule.body.source is None


def test_unknown_source(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{exists_in_window: {source: awrd, months: 3}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'awrd')}: statuses.is_x.rule.exists_in_window.source: "
        "unknown source 'awrd' (did you mean 'award'?)"
    )


def test_events_condition_on_the_facts_source(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{exists_in_year: {source: facts}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'facts}}')}: statuses.is_x.rule.exists_in_year.source: "
        "exists_in_year needs an events source; 'facts' is the facts source"
    )


def test_facts_condition_on_an_events_source(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{not: {disappeared: {source: award}}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'award}}}')}: statuses.is_x.rule.not.disappeared.source: "
        "disappeared reads the facts source; 'award' is an events source "
        "(the facts source is 'facts')"
    )


def test_unknown_config_name(rules: Rules) -> None:
    rules.add_statuses(
        status("is_x", "{field_compare: {field: f, op: gt, value: {config: treshold}}}")
    )
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'treshold')}: "
        "statuses.is_x.rule.field_compare.value.config: unknown config 'treshold' "
        "(did you mean 'threshold'?)"
    )


def test_top_n_needs_a_whole_config_number(rules: Rules) -> None:
    rules.add_statuses(
        status(
            "is_x",
            "{top_n: {field: f, n: {config: ratio}, within: b}}",
            grain="company",
            annual=True,
        )
    )
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'ratio}')}: statuses.is_x.rule.top_n.n.config: config "
        "'ratio' is 0.5; this needs a whole number of at least 1"
    )


def test_unknown_status_reference(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{all: [{status: is_won}, {not: {status: is_bgi}}]}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'is_bgi')}: statuses.is_x.rule.all[1].not.status: "
        "unknown status 'is_bgi' (did you mean 'is_big'?)"
    )


def test_cycle(rules: Rules) -> None:
    rules.add_statuses(
        status("is_a", "{status: is_b}")
        + status("is_b", "{all: [{status: is_won}, {status: is_a}]}")
        + status("is_c", "{not: {status: is_c}}")
    )
    assert rules.errors() == [
        f"{rules.at('statuses.yml', 'is_a}')}: statuses.is_b.rule.all[1].status: "
        "cycle among statuses: is_a -> is_b -> is_a",
        f"{rules.at('statuses.yml', 'is_c}')}: statuses.is_c.rule.not.status: "
        "cycle among statuses: is_c -> is_c",
    ]


def test_cycle_is_shown_in_reading_order(rules: Rules) -> None:
    # graphlib lists a cycle from each status to the one that reads it: the message must
    # still read "is_a reads is_b reads is_c reads is_a".
    rules.add_statuses(
        status("is_a", "{status: is_b}")
        + status("is_b", "{status: is_c}")
        + status("is_c", "{any: [{status: is_won}, {status: is_a}]}")
    )
    assert rules.errors() == [
        f"{rules.at('statuses.yml', 'is_a}')}: statuses.is_c.rule.any[1].status: "
        "cycle among statuses: is_a -> is_b -> is_c -> is_a",
    ]


def test_cycle_starts_at_its_first_defined_status(rules: Rules) -> None:
    # is_p leads into the cycle at is_b; the cycle is still shown from is_a, defined first,
    # at the reference that closes it (is_b's reading of is_a).
    rules.add_statuses(
        status("is_p", "{status: is_b}")
        + status("is_a", "{status: is_b}")
        + status("is_b", "{not: {status: is_a}}")
    )
    assert rules.errors() == [
        f"{rules.at('statuses.yml', 'is_a}')}: statuses.is_b.rule.not.status: "
        "cycle among statuses: is_a -> is_b -> is_a",
    ]


def test_every_cycle_is_reported_once(rules: Rules) -> None:
    # Two cycles through is_a and is_b; is_b reads is_a twice (one issue for the pair).
    rules.add_statuses(
        status("is_a", "{status: is_b}")
        + status("is_b", "{all: [{status: is_a}, {status: is_c}, {not: {status: is_a}}]}")
        + status("is_c", "{status: is_a}")
    )
    assert rules.errors() == [
        f"{rules.at('statuses.yml', 'is_a}', 1)}: statuses.is_b.rule.all[0].status: "
        "cycle among statuses: is_a -> is_b -> is_a",
        f"{rules.at('statuses.yml', 'is_a}', 3)}: statuses.is_c.rule.status: "
        "cycle among statuses: is_a -> is_b -> is_c -> is_a",
    ]


def test_status_order_refuses_a_cycle(rules: Rules) -> None:
    # A rule set built by hand can hold a cycle the loader would reject: no order exists.
    ruleset = load_rules(rules.dir)
    looping = Status.model_validate(
        {"description": "x", "grain": "product_line", "rule": {"status": "is_x"}}
    )
    cyclic = ruleset.model_copy(update={"statuses": {**ruleset.statuses, "is_x": looping}})
    with pytest.raises(CycleError) as caught:
        cyclic.status_order()
    assert caught.value.args[1] == ["is_x", "is_x"]


def test_annual_status_using_exists_in_year(rules: Rules) -> None:
    rules.add_statuses(
        status("is_x", "{any: [{exists_in_year: {source: award}}]}", grain="company", annual=True)
    )
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'exists_in_year', 2)}: "
        "statuses.is_x.rule.any[0].exists_in_year: exists_in_year is not allowed in an annual "
        "status: annual statuses are evaluated once a year at the reference month; make it a "
        "monthly status"
    )


def test_annual_status_reading_a_monthly_status(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{status: is_won}", annual=True))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'is_won}')}: statuses.is_x.rule.status: annual status "
        "'is_x' may read only annual statuses; 'is_won' is monthly"
    )


def test_top_n_in_a_monthly_status(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{top_n: {field: f, n: 3, within: 机构代码}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'top_n')}: statuses.is_x.rule.top_n: top_n is allowed "
        "only in annual statuses (annual: true)"
    )


def test_top_n_in_an_annual_status(rules: Rules) -> None:
    rules.add_statuses(
        status("is_x", "{top_n: {field: f, n: {config: top}, within: b}}", annual=True)
    )
    assert load_rules(rules.dir).annual_statuses["is_x"].rule.kind == "top_n"


def test_match_keys_the_source_lacks(rules: Rules) -> None:
    rules.add_statuses(
        status("is_x", "{exists_in_year: {source: award}}", grain="plan")
        + status("is_y", "{exists_in_year: {source: award, match: [company_id, plan_code]}}")
        + status("is_z", "{exists_in_year: {source: award, match: [company_id, plan_cod]}}")
    )
    assert rules.errors() == [
        f"{rules.at('statuses.yml', 'exists_in_year', 2)}: statuses.is_x.rule.exists_in_year: "
        "source 'award' has no plan_code key, which grain 'plan' matches on; map it in the "
        "source's keys or give match:",
        f"{rules.at('statuses.yml', 'plan_code]')}: "
        "statuses.is_y.rule.exists_in_year.match[1]: 'plan_code' is not part of the key of "
        "grain 'product_line' (company_id, product_line_code)",
        f"{rules.at('statuses.yml', 'plan_cod]')}: "
        "statuses.is_z.rule.exists_in_year.match[1]: invalid value 'plan_cod' "
        "(did you mean 'plan_code'?); expected one of: company_id, plan_code, product_line_code",
    ]


def test_months_out_of_range(rules: Rules) -> None:
    rules.add_statuses(
        status("is_x", "{exists_in_window: {source: award, months: 121}}")
        + status("is_y", "{exists_in_window: {source: award, months: 0}}")
    )
    assert rules.errors() == [
        f"{rules.at('statuses.yml', '121')}: statuses.is_x.rule.exists_in_window.months: "
        "months must be between 1 and 120, got 121",
        f"{rules.at('statuses.yml', '0}}')}: statuses.is_y.rule.exists_in_window.months: "
        "months must be between 1 and 120, got 0",
    ]


# --- names and identifiers ----------------------------------------------------------------


def test_bad_status_name(rules: Rules) -> None:
    rules.add_statuses(status("Is-New", "{first_appearance: {}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'Is-New')}: statuses.Is-New: invalid status name "
        "'Is-New': use lower-case letters, digits and _, starting with a letter, at most 63 "
        "characters"
    )


def test_reserved_status_name(rules: Rules) -> None:
    rules.add_statuses(status("aum_balance", "{first_appearance: {}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'aum_balance')}: statuses.aum_balance: status name "
        "'aum_balance' is reserved: it is a column of the snapshot or contract tables"
    )


def test_identifier_with_nul(rules: Rules) -> None:
    rules.add_statuses(status("is_x", '{field_equals: {field: "a\\0b", value: 1}}'))
    where = rules.at("statuses.yml", '"a')
    assert rules.error() == (
        f"{where}: statuses.is_x.rule.field_equals.field: "
        "identifier 'a\\x00b' contains a NUL character"
    )


def test_identifier_longer_than_63_bytes(rules: Rules) -> None:
    long_name = "规模" * 11  # 22 characters, 66 bytes
    rules.write("config.yml", CONFIG.replace("date_field: 上报月份", f"date_field: {long_name}"))
    assert rules.error() == (
        f"{rules.at('config.yml', long_name)}: sources.award.date_field: identifier "
        f"'{long_name}' is 66 bytes long in UTF-8; PostgreSQL identifiers are at most 63 bytes"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("规模明细", "expected schema.table (e.g. business.规模明细), got '规模明细'"),
        ("'business.\"规模明细\"'", "write 'business.\"规模明细\"' without double quotes; "),
    ],
)
def test_table_must_be_schema_dot_table(rules: Rules, table: str, message: str) -> None:
    rules.write("config.yml", CONFIG.replace("table: business.规模明细", f"table: {table}"))
    assert rules.error().startswith(
        f"{rules.at('config.yml', table)}: sources.facts.table: {message}"
    )


def test_bad_config_entries(rules: Rules) -> None:
    rules.write("config.yml", CONFIG.replace("  ratio: 0.5\n", "  Ratio: 0.5\n  big: .inf\n"))
    assert rules.errors() == [
        f"{rules.at('config.yml', 'Ratio')}: config.Ratio: invalid config name 'Ratio': use "
        "lower-case letters, digits and _, starting with a letter, at most 63 characters",
        f"{rules.at('config.yml', '.inf')}: config.big: expected a finite number, got inf",
    ]


# --- enums --------------------------------------------------------------------------------


def test_invalid_op(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{field_compare: {field: f, op: gte, value: 1}}"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'gte')}: statuses.is_x.rule.field_compare.op: invalid "
        "value 'gte' (did you mean 'gt'?); expected one of: gt, ge, lt, le, ne"
    )


def test_invalid_grain(rules: Rules) -> None:
    rules.add_statuses(status("is_x", "{first_appearance: {}}", grain="product-line"))
    assert rules.error() == (
        f"{rules.at('statuses.yml', 'product-line')}: statuses.is_x.grain: invalid value "
        "'product-line' (did you mean 'product_line'?); expected one of: company, "
        "product_line, plan"
    )


def test_invalid_on_missing(rules: Rules) -> None:
    rules.write("contract.yml", CONTRACT.replace("on_missing: suspend", "on_missing: suspnd"))
    assert rules.error() == (
        f"{rules.at('contract.yml', 'suspnd')}: contract.on_missing: invalid value 'suspnd' "
        "(did you mean 'suspend'?); expected one of: suspend, close"
    )


def test_wrong_scalar_types(rules: Rules) -> None:
    rules.add_statuses(
        "  is_x:\n    description: x\n    grain: plan\n    annual: yes please\n"
        "    rule: {field_equals: {field: 7, value: 2024-01-01}}\n"
    )
    assert rules.errors() == [
        f"{rules.at('statuses.yml', 'yes please')}: statuses.is_x.annual: expected true or "
        "false, got a string",
        f"{rules.at('statuses.yml', '7,')}: statuses.is_x.rule.field_equals.field: expected a "
        "column name, got an integer",
        f"{rules.at('statuses.yml', '2024')}: statuses.is_x.rule.field_equals.value: expected "
        "a string, number or boolean, got a date (quote it to make it a string)",
    ]


# --- sources and contract -----------------------------------------------------------------


def test_exactly_one_facts_source(rules: Rules) -> None:
    rules.write("config.yml", CONFIG.replace("kind: events", "kind: facts"))
    errors = rules.errors()
    assert errors[0] == (
        f"{rules.at('config.yml', 'facts', 3)}: sources.award.kind: only one source may have "
        "kind: facts; 'facts' already has it"
    )


def test_no_facts_source(rules: Rules) -> None:
    rules.write("config.yml", CONFIG.replace("kind: facts", "kind: events"))
    assert rules.errors()[0] == (
        f"{rules.at('config.yml', 'sources')}: sources: no source has kind: facts; exactly one "
        "must (the monthly fact table)"
    )


def test_facts_source_needs_plan_code(rules: Rules) -> None:
    rules.write("config.yml", CONFIG.replace("plan_code: 计划代码, ", ""))
    assert rules.error() == (
        f"{rules.at('config.yml', 'keys')}: sources.facts.keys: the facts source must map "
        "plan_code: the contract key is (company_id, plan_code, product_line_code)"
    )


def test_status_value_not_in_status_values(rules: Rules) -> None:
    rules.write("contract.yml", CONTRACT.replace("default: 停缴", "default: 停缴了"))
    assert rules.error() == (
        f"{rules.at('contract.yml', '停缴了')}: contract.status.default: '停缴了' is not one of "
        "status_values (正常, 停缴) (did you mean '停缴'?)"
    )


def test_contract_source_must_be_facts(rules: Rules) -> None:
    rules.write("contract.yml", CONTRACT.replace("source: facts", "source: award"))
    assert rules.error() == (
        f"{rules.at('contract.yml', 'award')}: contract.source: the contract reads the facts "
        "source ('facts'); 'award' is not it"
    )


def test_contract_rule_reads_only_facts(rules: Rules) -> None:
    rules.write(
        "contract.yml",
        CONTRACT.replace(
            "{field_compare: {field: 期末资产规模, op: gt, value: 0}}",
            "{any: [{field_equals: {field: f, value: x}}, {status: is_won}]}",
        ),
    )
    assert rules.error() == (
        f"{rules.at('contract.yml', 'status: is_won')}: contract.status.cases[0].when.any[1]."
        "status: status is not allowed in the contract status rule: a contract's status "
        "depends only on its own facts of the month (allowed: field_equals, field_compare, "
        "all, any, not)"
    )


def test_suspend_needs_suspended_status(rules: Rules) -> None:
    rules.write("contract.yml", CONTRACT.replace("  suspended_status: 停缴\n", ""))
    assert rules.error() == (
        "rules/contract.yml:2:1: contract: on_missing: suspend needs suspended_status (the "
        "status a key takes in a loaded month it is absent from)"
    )


def test_close_needs_no_suspended_status(rules: Rules) -> None:
    rules.write(
        "contract.yml",
        CONTRACT.replace("  suspended_status: 停缴\n", "").replace("suspend", "close"),
    )
    assert load_rules(rules.dir).contract.on_missing == "close"


def test_tracked_columns(rules: Rules) -> None:
    rules.write(
        "contract.yml",
        CONTRACT.replace(
            "[contract_status, status_year, is_big]", "[contract_status, is_won, is_bg, is_bg]"
        ),
    )
    assert rules.errors() == [
        f"{rules.at('contract.yml', '[contract_status')}: contract.tracked_columns: "
        "tracked_columns must include status_year",
        f"{rules.at('contract.yml', 'is_won')}: contract.tracked_columns[1]: 'is_won' is a "
        "monthly status; only annual statuses are stored on contract versions",
        f"{rules.at('contract.yml', 'is_bg')}: contract.tracked_columns[2]: unknown tracked "
        "column 'is_bg' (did you mean 'is_big'?); allowed: contract_status, status_year, is_big",
        f"{rules.at('contract.yml', 'is_bg', 2)}: contract.tracked_columns[3]: 'is_bg' is "
        "listed twice",
    ]


def test_missing_required_key(rules: Rules) -> None:
    rules.write("contract.yml", CONTRACT.replace("  measure: 期末资产规模\n", ""))
    assert rules.error() == ("rules/contract.yml:2:1: contract: missing required key 'measure'")


# --- many errors at once ------------------------------------------------------------------


def test_every_error_in_every_file_is_reported(rules: Rules) -> None:
    rules.write(
        "config.yml", CONFIG.replace("table: customer.当年中标", "tabel: customer.当年中标")
    )
    rules.write("contract.yml", CONTRACT.replace("on_missing: suspend", "on_missing: later"))
    rules.add_statuses(
        status("is_x", "{status: is_wno}")
        + status("is_y", "{field_compare: {field: f, op: gt, value: {config: top}}}", grain="x")
    )
    with pytest.raises(RulesInvalid) as caught:
        load_rules(rules.dir)
    lines = [format_issue(issue) for issue in caught.value.errors]
    assert lines == [
        f"{rules.at('config.yml', 'award')}: sources.award: missing required key 'table'",
        f"{rules.at('config.yml', 'tabel')}: sources.award.tabel: unknown key 'tabel' "
        "(did you mean 'table'?)",
        f"{rules.at('contract.yml', 'later')}: contract.on_missing: invalid value 'later'; "
        "expected one of: suspend, close",
        f"{rules.at('statuses.yml', 'is_wno')}: statuses.is_x.rule.status: unknown status "
        "'is_wno' (did you mean 'is_won'?)",
        f"{rules.at('statuses.yml', 'grain: x', shift=7)}: statuses.is_y.grain: invalid value "
        "'x'; expected one of: company, product_line, plan",
    ]
    assert isinstance(caught.value, CmdmError)
    assert caught.value.message.splitlines() == ["the rules are invalid (5 errors):", *lines]


def test_format_issue_without_position() -> None:
    assert format_issue(RuleIssue("rules/", None, None, "", "no rule files")) == (
        "rules/: no rule files"
    )
    assert format_issue(RuleIssue("rules/a.yml", 3, 7, "config.x", "bad")) == (
        "rules/a.yml:3:7: config.x: bad"
    )
