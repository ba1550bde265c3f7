"""Stale months cannot hide (issue 18, deliverable 3).

A load with the hooks off (`cmdm.post_hooks = off`, or `cmdm hooks disable`) commits its
facts and events without the outputs following. The database records which months (and
events dates) changed since their last successful hook run, even then; `cmdm status`
lists them (JSON `stale` and `stale_months`; exit code 3 with --fail-on-stale), `cmdm
backfill --stale` runs the hooks of exactly those, and a successful hook run of a month
clears it in its own transaction. `cmdm check` agrees at every step.
"""

from __future__ import annotations

import json
from datetime import date

import psycopg
import pytest
from test_hook_concurrency import SPEC, UNIVERSE, write_part
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.demo import load_customers

runner = CliRunner()
DOMAIN = "annuity_performance"
#: The universe's September, October and November 2024.
SEP, OCT, NOV = (UNIVERSE[i] for i in range(3))
#: cmdm status' exit code when a month is stale.
STALE_EXIT = 3


def cli(url: str, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--database-url", url, "--json"])
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"cmdm {' '.join(args)}: {result.output}") from result.exception


def stale(url: str) -> tuple[int, list[tuple[str, str]]]:
    """cmdm status' exit code and its stale months as (month, kind) pairs."""
    code, data = cli(url, "status", "--fail-on-stale")
    return code, [(m["month"], kind) for m in data["stale_months"] for kind in m["kinds"]]


def check_code(url: str) -> int:
    return cli(url, "check")[0]


@pytest.fixture
def september(rules_url: str) -> str:
    """Customers, and September loaded with the hooks on."""
    with psycopg.connect(rules_url) as conn:
        load_customers(conn, SPEC)
        conn.commit()
        write_part(conn, SEP, lambda: None)
    return rules_url


def load_without_hooks(url: str, part: object, *, call: bool = False) -> None:
    with psycopg.connect(url, options="-c cmdm.post_hooks=off") as conn:
        write_part(conn, part, lambda: None)
        if call:
            conn.execute("CALL customer.run_post_etl_hooks(%s, %s)", (DOMAIN, part.month))


def test_a_load_with_the_hooks_off_and_no_call_is_stale_until_backfilled(september: str) -> None:
    assert stale(september) == (0, [])
    load_without_hooks(september, OCT)
    code, months = stale(september)
    assert code == STALE_EXIT
    # October's facts, and its awards and losses (October dates, and a late September one)
    assert months == [("2024-09", "events"), ("2024-10", "events"), ("2024-10", "facts")]
    assert check_code(september) == 1

    code, ran = cli(september, "backfill", "--stale")
    assert code == 0
    assert [m["month"] for m in ran["months"]] == ["2024-09", "2024-10"]
    assert stale(september) == (0, [])
    assert check_code(september) == 0


def test_a_call_in_the_same_transaction_clears_its_month(september: str) -> None:
    load_without_hooks(september, OCT, call=True)
    # the CALL covered October's facts; the events dates it was not given stay stale
    months = stale(september)[1]
    assert ("2024-10", "facts") not in months
    assert ("2024-09", "events") in months
    cli(september, "backfill", "--stale")
    assert stale(september) == (0, [])
    assert check_code(september) == 0


def test_a_failed_call_after_the_load_committed_leaves_the_month_stale(september: str) -> None:
    load_without_hooks(september, OCT)
    with psycopg.connect(september) as conn, pytest.raises(psycopg.Error):
        # a hook step fails (the period is out of range): the CALL's transaction rolls back
        conn.execute("CALL customer.run_post_etl_hooks(%s, %s)", (DOMAIN, date(2250, 6, 1)))
    assert ("2024-10", "facts") in stale(september)[1]


def test_a_disabled_domain_leaves_its_months_stale(september: str) -> None:
    assert cli(september, "hooks", "disable", DOMAIN)[0] == 0
    with psycopg.connect(september) as conn:
        write_part(conn, OCT, lambda: None)
    code, months = stale(september)
    assert code == STALE_EXIT and ("2024-10", "facts") in months
    assert cli(september, "hooks", "enable", DOMAIN)[0] == 0
    assert cli(september, "backfill", "--stale")[0] == 0
    assert stale(september) == (0, [])
    assert check_code(september) == 0


def test_a_load_with_the_hooks_on_records_nothing(september: str) -> None:
    with psycopg.connect(september) as conn:
        write_part(conn, OCT, lambda: None)
        assert conn.execute("SELECT count(*) FROM cmdm.stale_change").fetchone() == (0,)
    assert stale(september) == (0, [])


def test_a_range_backfill_clears_the_facts_of_its_months(september: str) -> None:
    load_without_hooks(september, OCT)
    load_without_hooks(september, NOV)
    assert cli(september, "backfill", "--from", "2024-10", "--to", "2024-11")[0] == 0
    months = stale(september)[1]
    assert [m for m in months if m[1] == "facts"] == []
