"""The rules revision committed under migrations/versions is what rules/ and sql/ render
today: a template or rule changed without `cmdm deploy-rules` fails here, not in production."""

from __future__ import annotations

import ast

from cmdm_admin.loader import load_rules
from cmdm_admin.project import project_dir
from cmdm_admin.render import render_rules


def committed_rules_sha() -> tuple[str, str]:
    """(file name, RULES_SHA256) of the newest rules revision file."""
    versions = sorted((project_dir() / "migrations" / "versions").glob("*_rules_*.py"))
    assert versions, "no rules revision committed"
    newest = versions[-1]
    tree = ast.parse(newest.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "RULES_SHA256" for t in node.targets
        ):
            return newest.name, ast.literal_eval(node.value)
    raise AssertionError(f"{newest.name} has no RULES_SHA256")


def test_committed_revision_matches_rules_and_templates() -> None:
    name, committed = committed_rules_sha()
    rendered = render_rules(load_rules(project_dir() / "rules")).sha256
    assert rendered == committed, (
        f"{name} holds rules sha256 {committed[:12]} but rules/ and sql/ render {rendered[:12]}: "
        "run `cmdm deploy-rules` against a database at head and commit the new revision"
    )
