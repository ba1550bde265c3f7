"""A rules project apart from the tool: `cmdm init`, finding the project (working
directory upward, --project-dir, $CMDM_PROJECT_DIR), and one `Error:` line for each way a
project can be missing or half-made. No database needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.project import (
    ALEMBIC_INI,
    PROJECT_DIR_ENV,
    PROJECT_FILE,
    ProjectError,
    create_project,
    current_project,
    default_rules_dir,
    find_project_root,
    project_dir,
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_project_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `--project-dir` sets $CMDM_PROJECT_DIR in this process: setting it first makes
    # monkeypatch restore it (to unset) after each test, so no test leaks a project.
    monkeypatch.setenv(PROJECT_DIR_ENV, "")
    monkeypatch.delenv(PROJECT_DIR_ENV)


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_init_writes_a_project_with_the_default_rules(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "annuity")])
    assert result.exit_code == 0, result.output
    root = tmp_path / "annuity"
    rules = sorted(p.name for p in (root / "rules").glob("*.yml"))
    assert rules == sorted(p.name for p in default_rules_dir().glob("*.yml")) and rules
    for name in rules:
        assert (root / "rules" / name).read_bytes() == (default_rules_dir() / name).read_bytes()
    assert (root / "migrations" / "versions").is_dir()
    assert (root / "alembic.ini").read_text() == ALEMBIC_INI
    found = find_project_root(root / "rules")
    assert found == root.resolve()
    assert "new cmdm project in" in result.output


def test_the_checkout_is_a_project_and_its_alembic_ini_is_the_one_init_writes() -> None:
    root = project_dir()
    assert (root / PROJECT_FILE).is_file()
    assert (root / "alembic.ini").read_text() == ALEMBIC_INI
    # The package's default rules are this checkout's rules (a link here, files in a wheel).
    assert default_rules_dir().resolve() == current_project().rules_dir


def test_the_project_is_found_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_project(tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p" / "migrations" / "versions")
    assert project_dir() == (tmp_path / "p").resolve()


def test_project_dir_option_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_project(tmp_path / "p")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--project-dir", str(tmp_path / "p"), "validate-rules"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path / "p"))
    assert runner.invoke(app, ["validate-rules"]).exit_code == 0


def test_no_project_anywhere_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_error_line(runner.invoke(app, ["validate-rules"]))
    assert f"no cmdm project here: no {PROJECT_FILE} in {tmp_path}" in line
    assert "cmdm init DIR" in line


def test_a_missing_project_dir_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(
        runner.invoke(app, ["--project-dir", str(tmp_path / "nowhere"), "validate-rules"])
    )
    assert f"project folder {tmp_path / 'nowhere'} does not exist" in line


def test_a_folder_without_settings_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    line = one_error_line(runner.invoke(app, ["--project-dir", str(tmp_path), "validate-rules"]))
    assert f"{tmp_path} is not a cmdm project: it has no {PROJECT_FILE}" in line


@pytest.mark.parametrize("missing", ["rules", "migrations/versions"])
def test_a_half_made_project_is_one_line(tmp_path: Path, missing: str) -> None:
    root = tmp_path / "p"
    create_project(root)
    for path in sorted((root / missing).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / missing).rmdir()
    line = one_error_line(runner.invoke(app, ["--project-dir", str(root), "validate-rules"]))
    assert f"has no folder {root / missing}" in line


def test_an_unknown_setting_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "p"
    create_project(root)
    (root / PROJECT_FILE).write_text('rules_dir = "rules"\nrule_dir = "rules"\n')
    line = one_error_line(runner.invoke(app, ["--project-dir", str(root), "validate-rules"]))
    assert "cmdm.toml: unknown setting 'rule_dir'" in line
    assert "the settings are rules_dir, migrations_dir, lock_timeout" in line


def test_broken_toml_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "p"
    create_project(root)
    (root / PROJECT_FILE).write_text("rules_dir = \n")
    line = one_error_line(runner.invoke(app, ["--project-dir", str(root), "validate-rules"]))
    assert "cmdm.toml: cannot be read" in line


def test_a_setting_of_the_wrong_type_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "p"
    create_project(root)
    (root / PROJECT_FILE).write_text("lock_timeout = 5\n")
    line = one_error_line(runner.invoke(app, ["--project-dir", str(root), "validate-rules"]))
    assert "lock_timeout must be a non-empty string, not 5" in line


def test_init_into_a_non_empty_folder_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    line = one_error_line(runner.invoke(app, ["init", str(tmp_path)]))
    assert f"{tmp_path} is not empty (it holds mine.txt)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_init_onto_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    line = one_error_line(runner.invoke(app, ["init", str(tmp_path / "f")]))
    assert "is a file, not a folder" in line


def test_init_below_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    line = one_error_line(runner.invoke(app, ["init", str(tmp_path / "f" / "p")]))
    assert "cannot write the project into" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_disk_that_fills_up_midway_leaves_no_half_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    written: list[Path] = []
    real_write_text = Path.write_text

    def write_text(self: Path, *args, **kwargs):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(self)
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(ProjectError, match="No space left on device"):
        create_project(tmp_path / "empty")
    with pytest.raises(ProjectError):
        create_project(tmp_path / "new")
    assert written and list((tmp_path / "empty").iterdir()) == []
    assert not (tmp_path / "new").exists()
