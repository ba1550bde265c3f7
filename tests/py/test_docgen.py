"""The generated reference docs (cmdm_admin.docgen): the committed docs/reference/ files are
exactly what the generator writes now, whatever the caller's terminal, so they cannot drift
from the models and the CLI; `--check` names a stale file and exits 1; and the content
covers every rule node kind and every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmdm_admin import docgen, rules
from cmdm_admin.project import project_dir

ROOT = project_dir()


@pytest.fixture(scope="module")
def generated() -> dict[Path, str]:
    # A hostile terminal: none of it may reach the bytes (the --help screens are rendered
    # by a child process with a fixed environment).
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "COLUMNS": "40",
            "TERMINAL_WIDTH": "40",
            "FORCE_COLOR": "1",
            "GITHUB_ACTIONS": "true",
            "TERM": "xterm-256color",
        }.items():
            env.setenv(name, value)
        return docgen.generate()


def test_the_committed_reference_is_what_the_generator_writes(
    generated: dict[Path, str],
) -> None:
    assert set(generated) == {Path("docs/reference/rules.md"), Path("docs/reference/cli.md")}
    for path, text in generated.items():
        committed = (ROOT / path).read_text(encoding="utf-8")
        assert committed == text, f"{path} is stale: run `make docs` and commit it"


def test_the_generator_is_deterministic(generated: dict[Path, str]) -> None:
    assert docgen.rules_reference() == generated[docgen.RULES_MD]
    for text in generated.values():
        assert "\x1b[" not in text, "no terminal colour codes"
        assert all(line == line.rstrip() for line in text.splitlines()), "no trailing spaces"


def test_check_passes_on_a_fresh_copy_and_names_a_tampered_file(
    generated: dict[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, text in generated.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert docgen.stale(tmp_path, generated) == []

    cli_md = tmp_path / docgen.CLI_MD
    cli_md.write_text(cli_md.read_text(encoding="utf-8").replace("## cmdm status\n", ""))
    assert docgen.stale(tmp_path, generated) == [docgen.CLI_MD]
    (tmp_path / docgen.RULES_MD).unlink()
    assert docgen.stale(tmp_path, generated) == [docgen.RULES_MD, docgen.CLI_MD]

    # The entry point, as `make docs` and CI run it.
    done = subprocess.run(
        [sys.executable, "-m", "cmdm_admin.docgen", "--check", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "stale: docs/reference/rules.md" in done.stderr
    assert "stale: docs/reference/cli.md" in done.stderr
    assert not (tmp_path / docgen.RULES_MD).exists(), "--check writes nothing"

    # Without --check it writes them, and then they are current.
    assert docgen.main(["--root", str(tmp_path)]) == 0
    assert docgen.stale(tmp_path, generated) == []
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 0
    assert "wrote docs/reference/rules.md" in capsys.readouterr().out


def test_a_changed_model_makes_the_committed_reference_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    committed = (ROOT / docgen.RULES_MD).read_text(encoding="utf-8")
    info = rules.TopN.model_fields["n"]
    monkeypatch.setattr(info, "description", "How many, counted differently.")
    changed = docgen.rules_reference()
    assert changed != committed
    assert "How many, counted differently." in changed


def test_every_rule_node_kind_and_section_is_documented(generated: dict[Path, str]) -> None:
    text = generated[docgen.RULES_MD]
    for kind in rules.NODE_KINDS:
        assert f"| `{kind}` |" in text, kind
    for model in (*docgen.SECTION_MODELS, *docgen.NODE_MODELS):
        assert f"### {model.__name__}\n" in text, model.__name__
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in text
            assert field.description, f"{model.__name__}.{name} has no description"
    for section in rules.SECTIONS:
        assert f"| `{section}` |" in text
    for field in rules.Rule.model_fields.values():
        assert field.description


def test_every_cli_command_has_its_help(generated: dict[Path, str]) -> None:
    from typer.models import CommandInfo

    from cmdm_admin.cli import app

    def name_of(command: CommandInfo) -> str:
        return command.name or command.callback.__name__.replace("_", "-")

    expected = [f"cmdm {name_of(c)}" for c in app.registered_commands if not c.hidden]
    for group in app.registered_groups:
        expected.append(f"cmdm {group.name}")
        expected += [
            f"cmdm {group.name} {name_of(c)}"
            for c in group.typer_instance.registered_commands
            if not c.hidden
        ]
    text = generated[docgen.CLI_MD]
    assert len(expected) > 25
    for title in expected:
        assert f"\n## {title}\n\n```text\n Usage: {title} " in text, title
