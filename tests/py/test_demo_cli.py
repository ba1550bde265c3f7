"""`cmdm demo load`, `cmdm demo generate` and `cmdm overview` as a user runs them."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

from dbutil import query
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.demo import DemoSpec, iter_months

runner = CliRunner()
SMALL = ["--companies", "60", "--months", "4", "--seed", "3", "--start", "2025-11"]


def test_load_twice_is_safe_and_overview_counts_match(migrated_url: str) -> None:
    first = runner.invoke(app, ["demo", "load", *SMALL, "--json", "--database-url", migrated_url])
    assert first.exit_code == 0, first.output
    loaded = json.loads(first.output)
    assert [m["month"] for m in loaded] == ["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01"]
    assert all(m["replaced"] == 0 for m in loaded)

    overview = json.loads(
        runner.invoke(app, ["overview", "--json", "--database-url", migrated_url]).output
    )
    spec = DemoSpec(companies=60, months=4, seed=3, start=date(2025, 11, 1))
    generated = list(iter_months(spec))
    assert [m["fact_rows"] for m in overview["months"]] == [len(m.facts) for m in generated]
    assert overview["customers"] >= 60

    again = runner.invoke(app, ["demo", "load", *SMALL, "--database-url", migrated_url])
    assert again.exit_code == 0, again.output
    assert "4 months replaced an earlier load" in again.output
    assert query(migrated_url, 'SELECT count(*) FROM business."规模明细"') == [
        (sum(len(m.facts) for m in generated),)
    ]
    human = runner.invoke(app, ["overview", "--database-url", migrated_url])
    assert "2026-02" in human.output and "4 loaded months" in human.output


def test_generate_writes_csv_without_a_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "generate", "--out", str(tmp_path), *SMALL])
    assert result.exit_code == 0, result.output
    with (tmp_path / "规模明细_2026-01.csv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["月度", "业务类型", "计划代码"]
    assert len(rows) > 60


def test_bad_start_month_is_one_line() -> None:
    result = runner.invoke(app, ["demo", "generate", "--out", "/tmp/x", "--start", "2025-13"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: '2025-13' is not a month; use 2026-01, 202601")


def test_generate_onto_a_file_or_an_unwritable_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken.csv").write_text("mine")
    below_a_file = tmp_path / "taken.csv" / "demo"
    for out, expected in (
        (tmp_path / "taken.csv", f"Error: {tmp_path / 'taken.csv'} is a file, not a folder"),
        (below_a_file, f"Error: cannot write the CSV files into {below_a_file}: "),
    ):
        result = runner.invoke(app, ["demo", "generate", "--out", str(out), "--months", "1"])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), result.output
    assert (tmp_path / "taken.csv").read_text() == "mine"
