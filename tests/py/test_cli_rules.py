"""`cmdm validate-rules` as a user runs it: all problems at once, located, exit code 1."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.project import project_dir

runner = CliRunner()


def test_shipped_rules_are_valid() -> None:
    result = runner.invoke(app, ["validate-rules"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "rules/ OK: 3 files, 3 sources, 7 statuses (2 annual), on_missing=suspend"
    )


def test_every_problem_is_printed_with_its_place(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(project_dir() / "rules", rules)
    statuses = rules / "statuses.yml"
    statuses.write_text(
        statuses.read_text()
        .replace("status: is_existing", "status: is_exsting")
        .replace("exists_in_year: {source: loss}", "exists_in_yaer: {source: loss}")
    )
    (rules / "config.yml").write_text(
        (rules / "config.yml").read_text().replace("schema_version: 1", "schema_version: 2")
    )
    result = runner.invoke(app, ["validate-rules", "--rules-dir", str(rules)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == "Error: 3 problems in the rules"
    assert any(
        line.endswith(
            "statuses.yml:30:25: statuses.is_new.rule.all[1].not.status: "
            "unknown status 'is_exsting' (did you mean 'is_existing'?)"
        )
        for line in lines
    ), result.output
    assert any("did you mean 'exists_in_year'?" in line for line in lines)
    assert any("config.yml:" in line and "schema_version" in line for line in lines)


def test_missing_rules_dir_is_one_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate-rules", "--rules-dir", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "rules directory not found" in result.output
