"""bench/run.py at a tiny scale: its floor replays exactly what the hook wrote.

The bench runs as `make bench` runs it (a subprocess, on the test cluster through
--database-url: it creates and drops its own database there). No timing is asserted: speed
targets live in the bench's report, never in tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from cmdm_admin.project import project_dir

COMPANIES, MONTHS = 40, 14  # 14 months: one January after the first month


@pytest.fixture(scope="module")
def bench(admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """(the --json document, the printed report) of one tiny run."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    command = [sys.executable, str(project_dir() / "bench" / "run.py")]
    command += ["--companies", str(COMPANIES), "--months", str(MONTHS)]
    command += ["--database-url", admin_url, "--json", str(path)]
    done = subprocess.run(
        command, cwd=project_dir(), capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(path.read_text()), done.stdout


def transactions(document: dict) -> list[dict]:
    """Every measured hook run: the months, then the restatement."""
    return document["months"] + [document["restatement"]]


def test_one_entry_per_month_each_with_a_floor(bench: tuple[dict, str]) -> None:
    document, _ = bench
    months = document["months"]
    assert [m["index"] for m in months] == list(range(1, MONTHS + 1))
    assert months[0]["period"] == "2024-01" and months[-1]["period"] == "2025-02"
    for m in transactions(document):
        assert m["floor"]["total_s"] > 0 and m["floor"]["aggregate_s"] > 0
        assert m["hook_s"] > 0 and m["facts"] > 0
        assert set(m["floor"]["tables_s"]) == {"contract", "business_snapshot", "plan_snapshot"}


def test_januaries_are_marked(bench: tuple[dict, str]) -> None:
    document, stdout = bench
    assert [m["period"] for m in document["months"] if m["january"]] == ["2024-01", "2025-01"]
    rows = [line for line in stdout.splitlines() if re.match(r"\s*\d+[* ] \d{4}-\d\d ", line)]
    assert len(rows) == MONTHS, stdout
    marked = [row.split()[1] for row in rows if row.split()[0].endswith("*")]
    assert marked == ["2024-01", "2025-01"]
    assert set(document["summary"]["januaries"]) == {"2024-01", "2025-01"}


def test_rows_written_are_what_the_hook_logged(bench: tuple[dict, str]) -> None:
    """The diff against the mirrors finds exactly the writes the functions count."""
    document, _ = bench
    for m in transactions(document):
        sync = m["run"]["counts"]["contract_sync"]
        versions = m["writes"]["contract"]
        assert versions["inserted"] == sync["versions_opened"], m["period"]
        assert versions["deleted"] == sync["versions_removed"], m["period"]
        # a version both closed and re-flagged is one updated row
        closed, reflagged = sync["versions_closed"], sync["versions_reflagged"]
        assert closed <= versions["updated"] <= closed + reflagged, m["period"]
        refresh = m["run"]["counts"]["snapshot_refresh"]
        for short, prefix in (("business_snapshot", "business"), ("plan_snapshot", "plan")):
            for kind in ("inserted", "updated", "deleted"):
                assert m["writes"][short][kind] == refresh[f"{prefix}_{kind}"], (m["period"], short)


def test_every_month_writes_its_own_snapshot(bench: tuple[dict, str]) -> None:
    for m in bench[0]["months"]:
        assert any(day[:7] == m["period"] for day in m["run"]["refreshed"]), m["period"]
        assert m["snapshot_rows_written"] > 0 and m["versions_written"] > 0


def test_the_mirrors_end_equal_to_our_tables(bench: tuple[dict, str]) -> None:
    """What the floor replayed, month after month, adds up to our tables."""
    document, _ = bench
    shorts = {
        "customer.customer_plan_contract": "contract",
        "customer.fct_customer_business_monthly_status": "business_snapshot",
        "customer.fct_customer_plan_monthly_status": "plan_snapshot",
    }
    assert [c["table"] for c in document["mirrors"]] == list(shorts)
    for check in document["mirrors"]:
        assert check["equal"] and check["differing_rows"] == 0, check
        writes = [m["writes"][shorts[check["table"]]] for m in transactions(document)]
        net = sum(w["inserted"] - w["deleted"] for w in writes)
        assert check["rows"] == check["mirror_rows"] == check["initial_rows"] + net
    assert document["summary"]["mirrors_equal"] is True
