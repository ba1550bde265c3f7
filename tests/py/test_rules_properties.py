"""Properties of the rule loader: whatever a rule file holds, loading it either succeeds or
raises RulesInvalid whose every issue formats as one line. Pure Python: no database."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmdm_admin.loader import RulesInvalid, format_issue, load_rules_from_texts
from cmdm_admin.rules import NODE_KINDS, RuleSet

CONFIG = {
    "schema_version": 1,
    "config": {"threshold": 100, "top": 3},
    "sources": {
        "facts": {
            "kind": "facts",
            "table": "business.规模明细",
            "date_field": "月度",
            "keys": {
                "company_id": "company_id",
                "plan_code": "计划代码",
                "product_line_code": "产品线代码",
            },
        },
        "award": {
            "kind": "events",
            "table": "customer.当年中标",
            "date_field": "上报月份",
            "keys": {"company_id": "company_id", "product_line_code": "产品线代码"},
        },
    },
}
CONTRACT = {
    "schema_version": 1,
    "contract": {
        "source": "facts",
        "measure": "期末资产规模",
        "branch_field": "机构代码",
        "status_values": ["正常", "停缴"],
        "status": {
            "cases": [
                {
                    "value": "正常",
                    "when": {"field_compare": {"field": "期末资产规模", "op": "gt", "value": 0}},
                }
            ],
            "default": "停缴",
        },
        "on_missing": "suspend",
        "suspended_status": "停缴",
        "tracked_columns": ["contract_status", "status_year"],
    },
}

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(max_size=80)
names = st.one_of(
    st.sampled_from(["is_a", "is_b", "facts", "award", "threshold", "top", "Is-New", ""]), text
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    text,
)


def condition_bodies(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    value = st.one_of(scalars, st.fixed_dictionaries({"config": names}))
    return st.one_of(
        st.fixed_dictionaries({"source": names}, optional={"match": st.lists(names, max_size=3)}),
        st.fixed_dictionaries({"source": names, "months": scalars}),
        st.fixed_dictionaries({"field": names, "value": value}),
        st.fixed_dictionaries(
            {"field": names, "op": st.sampled_from(["gt", "ge", "lt", "le", "ne", "eq"]) | text}
        ).map(lambda d: {**d, "value": 1}),
        st.fixed_dictionaries({"field": names, "n": value, "within": names}),
        st.just({}),
        names,
        st.lists(children, max_size=3),
        children,
        scalars,
    )


def nodes() -> st.SearchStrategy[Any]:
    kinds = st.one_of(st.sampled_from(NODE_KINDS), names)
    return st.recursive(
        st.one_of(
            scalars,
            st.builds(lambda k, n: {k: {"status": n}}, kinds, names),
            st.builds(lambda n: {"status": n}, names),
        ),
        lambda children: st.one_of(
            st.dictionaries(kinds, condition_bodies(children), min_size=1, max_size=2),
            st.builds(lambda k, xs: {k: xs}, st.sampled_from(["all", "any"]), st.lists(children)),
            st.builds(lambda x: {"not": x}, children),
        ),
        max_leaves=12,
    )


statuses = st.dictionaries(
    names,
    st.one_of(
        st.fixed_dictionaries(
            {
                "description": st.one_of(text, scalars),
                "grain": st.sampled_from(["company", "product_line", "plan"]) | text,
                "rule": nodes(),
            },
            optional={"annual": st.one_of(st.booleans(), scalars)},
        ),
        scalars,
    ),
    max_size=4,
)


# Mostly well-formed statuses whose references point anywhere: they reach the checks that
# span statuses (unknown names, kinds of sources, annual rules, cycles).
pool = st.sampled_from(["is_a", "is_b", "is_c", "is_d", "facts", "award", "threshold", "top"])
leaves = st.one_of(
    st.builds(lambda s: {"exists_in_year": {"source": s}}, pool),
    st.builds(
        lambda s, m, k: {"exists_in_window": {"source": s, "months": m, "match": k}},
        pool,
        st.integers(0, 130),
        st.lists(st.sampled_from(["company_id", "plan_code", "product_line_code"]), min_size=1),
    ),
    st.builds(
        lambda c: {"field_compare": {"field": "f", "op": "gt", "value": {"config": c}}}, pool
    ),
    st.builds(lambda c: {"top_n": {"field": "f", "n": {"config": c}, "within": "b"}}, pool),
    st.builds(lambda s: {"disappeared": {"source": s}}, pool),
    st.just({"first_appearance": {}}),
    st.builds(lambda s: {"status": s}, pool),
)
plausible_rules = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=6,
)
plausible_statuses = st.dictionaries(
    st.sampled_from(["is_a", "is_b", "is_c", "is_d"]),
    st.builds(
        lambda grain, annual, rule: {
            "description": "d",
            "grain": grain,
            "annual": annual,
            "rule": rule,
        },
        st.sampled_from(["company", "product_line", "plan"]),
        st.booleans(),
        plausible_rules,
    ),
    min_size=1,
    max_size=4,
)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def check(files: dict[str, str]) -> None:
    try:
        ruleset = load_rules_from_texts(files)
    except RulesInvalid as exc:
        assert exc.errors
        for issue in exc.errors:
            line = format_issue(issue)
            assert "\n" not in line
            assert line.startswith(issue.file)
    else:
        assert isinstance(ruleset, RuleSet)
        assert len(ruleset.status_order()) == len(ruleset.statuses)


@PROPERTY
@given(statuses)
def test_arbitrary_statuses_never_crash_the_loader(body: dict[str, Any]) -> None:
    check(
        {
            "config.yml": dump(CONFIG),
            "contract.yml": dump(CONTRACT),
            "statuses.yml": dump({"schema_version": 1, "statuses": body}),
        }
    )


@PROPERTY
@given(plausible_statuses, st.lists(st.sampled_from(["is_a", "is_b", "is_x"]), max_size=2))
def test_cross_references_never_crash_the_loader(body: dict[str, Any], tracked: list[str]) -> None:
    contract = yaml.safe_load(dump(CONTRACT))
    contract["contract"]["tracked_columns"] += tracked
    check(
        {
            "config.yml": dump(CONFIG),
            "contract.yml": dump(contract),
            "statuses.yml": dump({"schema_version": 1, "statuses": body}),
        }
    )


@PROPERTY
@given(names, names, scalars, names)
def test_arbitrary_identifiers_never_crash_the_loader(
    table: str, field: str, value: Any, key_column: str
) -> None:
    config = yaml.safe_load(dump(CONFIG))
    config["sources"]["award"]["table"] = f"customer.{table}"
    config["sources"]["award"]["keys"]["company_id"] = key_column
    contract = yaml.safe_load(dump(CONTRACT))
    contract["contract"]["measure"] = field
    contract["contract"]["status"]["default"] = value
    status = {
        "description": "x",
        "grain": "company",
        "rule": {"field_equals": {"field": field, "value": value}},
    }
    check(
        {
            "config.yml": dump(config),
            "contract.yml": dump(contract),
            "statuses.yml": dump({"schema_version": 1, "statuses": {"is_x": status}}),
        }
    )


@PROPERTY
@given(st.text(max_size=300))
def test_arbitrary_file_text_never_crashes_the_loader(content: str) -> None:
    check({"config.yml": dump(CONFIG), "contract.yml": dump(CONTRACT), "statuses.yml": content})


@PROPERTY
@given(
    st.lists(
        st.sampled_from(
            [
                "schema_version: 1\n",
                "statuses:\n",
                "  is_a:\n",
                "    rule: {status: is_a}\n",
                "    rule:\n      all:\n        - &x {status: is_b}\n        - *x\n",
                "    grain: plan\n",
                "    description: 'unclosed\n",
                "\t\n",
                "  - item\n",
                "  <<: {a: 1}\n",
                "    annual: !!binary aGVsbG8=\n",
                "    x: 2024-13-45\n",
                "---\n",
                "\x00\n",
            ]
        ),
        max_size=10,
    )
)
def test_arbitrary_yaml_fragments_never_crash_the_loader(lines: list[str]) -> None:
    check(
        {"config.yml": dump(CONFIG), "contract.yml": dump(CONTRACT), "statuses.yml": "".join(lines)}
    )
