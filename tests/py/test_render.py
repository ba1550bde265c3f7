"""`cmdm render-rules`: the same rules and templates give the same bytes, in one process,
twice, and in a fresh one; --out writes one file per object named after its template, and
nothing else."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.deploy import sql_file_name
from cmdm_admin.loader import load_rules, load_rules_from_texts
from cmdm_admin.project import project_dir, sql_dir
from cmdm_admin.render import RenderError, render_rules

runner = CliRunner()

FRESH_PROCESS = """
import hashlib, sys
from pathlib import Path
from cmdm_admin.loader import load_rules
from cmdm_admin.render import render_rules
rendered = render_rules(load_rules(Path(sys.argv[1])), Path(sys.argv[2]))
print(rendered.sha256, hashlib.sha256(rendered.sql.encode()).hexdigest())
"""


def frozen_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of rules/ and sql/: templates may be edited while the tests run."""
    rules, sql = tmp_path / "rules", tmp_path / "sql"
    shutil.copytree(project_dir() / "rules", rules)
    shutil.copytree(sql_dir(), sql)
    return rules, sql


def test_render_is_deterministic_across_calls_and_processes(tmp_path: Path) -> None:
    rules, sql = frozen_inputs(tmp_path)
    first = render_rules(load_rules(rules), sql)
    second = render_rules(load_rules(rules), sql)
    assert first == second
    assert first.sql.encode() == second.sql.encode()
    expected = f"{first.sha256} {hashlib.sha256(first.sql.encode()).hexdigest()}"
    for seed in ("0", "12345"):  # another process, another str hash seed
        run = subprocess.run(
            [sys.executable, "-c", FRESH_PROCESS, str(rules), str(sql)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        assert run.stdout.strip() == expected


def test_every_object_carries_the_sha(tmp_path: Path) -> None:
    rules, sql = frozen_inputs(tmp_path)
    rendered = render_rules(load_rules(rules), sql)
    assert rendered.objects
    for obj in rendered.objects:
        assert rendered.sha256 in obj.sql, obj.template
        assert obj.sha256 == hashlib.sha256(obj.sql.encode()).hexdigest()


def test_render_rules_prints_the_sql(tmp_path: Path) -> None:
    rules, sql = frozen_inputs(tmp_path)
    args = ["render-rules", "--rules-dir", str(rules), "--sql-dir", str(sql)]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    assert first.stdout == render_rules(load_rules(rules), sql).sql


def test_render_rules_out_writes_one_file_per_object(tmp_path: Path) -> None:
    rules, sql = frozen_inputs(tmp_path)
    out = tmp_path / "out"
    args = ["render-rules", "--rules-dir", str(rules), "--sql-dir", str(sql), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rendered = render_rules(load_rules(rules), sql)
    expected = {sql_file_name(o.template): o.sql.encode() for o in rendered.objects}
    assert "functions/customer.sync_contract_status.sql" in expected
    written = {
        str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }
    assert written == expected
    assert f"wrote {len(expected)} files" in result.stdout

    # Again: the same bytes; a file an earlier render left behind is removed.
    (out / "functions" / "customer.gone.sql").write_text("-- stale\n")
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "removed 1 stale" in again.stdout
    assert {
        str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    } == expected


def test_render_rules_reports_invalid_rules_located(tmp_path: Path) -> None:
    rules, _ = frozen_inputs(tmp_path)
    statuses = rules / "statuses.yml"
    statuses.write_text(statuses.read_text().replace("status: is_existing", "status: is_exstng"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["render-rules", "--rules-dir", str(rules), "--out", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == "Error: 1 problem in the rules"
    assert "statuses.yml:" in lines[0] and "unknown status 'is_exstng'" in lines[0]
    assert not out.exists()


def test_a_template_error_is_one_line_naming_the_template(tmp_path: Path) -> None:
    rules, sql = frozen_inputs(tmp_path)
    template = sql / "functions" / "customer.loaded_months.sql.j2"
    template.write_text(template.read_text() + "\n{{ no_such_variable }}\n")
    result = runner.invoke(app, ["render-rules", "--rules-dir", str(rules), "--sql-dir", str(sql)])
    assert result.exit_code == 1
    assert result.output.count("Error:") == 1
    assert "sql/functions/customer.loaded_months.sql.j2" in result.output
    assert "Traceback" not in result.output


def hostile_rules(field: str, within: str) -> dict[str, str]:
    texts = {p.name: p.read_text(encoding="utf-8") for p in (project_dir() / "rules").glob("*.yml")}
    texts["statuses.yml"] = texts["statuses.yml"].replace(
        "top_n: {field: 期末资产规模, n: {config: whitelist_top_n}, within: 机构代码}",
        f"top_n: {{field: {json.dumps(field)}, n: 3, within: {json.dumps(within)}}}",
    )
    return texts


def test_names_cannot_escape_comments_or_the_routine_body() -> None:
    """Names from rules/ are echoed in SQL comments: a line break or `*/` in them must not end
    the comment (the rest would run inside a SECURITY DEFINER function), and `$fn$` in a
    value must not close the routine body."""
    field = "m\nCROSS JOIN set_config('x.y', 'pwned', false) z\n--"
    within = "b */ SELECT 1; /* c"
    ruleset = load_rules_from_texts(hostile_rules(field, within))
    rendered = render_rules(ruleset)
    sql = rendered.sql
    # every occurrence is inside the quoted identifier or a string literal (the evidence a
    # decision records), none at the start of a line of SQL
    assert sql.count("\nCROSS JOIN set_config") == sql.count(
        '"m\nCROSS JOIN set_config'
    ) + sql.count("'m\nCROSS JOIN set_config")
    for obj in rendered.objects:
        assert obj.sql.count("/*") == obj.sql.count("*/"), obj.template
        assert obj.sql.count("$fn$") == 2, obj.template
    # the name is still used, quoted, where it is a column
    assert "\"m\nCROSS JOIN set_config('x.y', 'pwned', false) z\n--\"" in sql


def test_a_name_holding_the_body_tag_is_refused() -> None:
    ruleset = load_rules_from_texts(hostile_rules("a$fn$b", "机构代码"))
    with pytest.raises(RenderError, match=r"\$fn\$"):
        render_rules(ruleset)
