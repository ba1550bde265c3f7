"""The operator commands of the post-ETL hooks as a user runs them: run-hooks, sync,
snapshot, backfill, rebuild, hooks list/enable/disable/runs, status.

Every test gets a new database at head (the committed rules revision) holding four months
of facts loaded with the hooks off, so that each test drives the hooks itself. A month is
made to fail in its snapshot step: one more fact row changes the month, and a trigger on
the plan snapshot table raises, for that month's rows, what two fact rows whose AUM sum
overflowed numeric(20, 2) raised before issue 18 (since then such rows are rejects and
the month commits: test_bad_input.py); removing both fixes it.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import psycopg
import pytest
from dbutil import query
from typer.testing import CliRunner

from cmdm_admin.backfill import BackfillError, start
from cmdm_admin.backfill import run as run_backfill
from cmdm_admin.cli import app

runner = CliRunner()

JAN, FEB, MAR, APR, MAY = (date(2024, m, 1) for m in (1, 2, 3, 4, 5))
MONTHS = (JAN, FEB, MAR, APR)
# (month, plan, company, product line, portfolio, AUM, branch)
FACTS = (
    *((m, "P1", "C1", "PL201", "F1", 100, "B1") for m in MONTHS),
    *((m, "P2", "C2", "PL202", "F1", 50, "B2") for m in (JAN, FEB)),
    *((m, "P3", "C1", "PL203", "F1", 30, "B1") for m in (MAR, APR)),
    (FEB, None, "C1", "PL201", "F9", 7, "B1"),  # rejected: null_key
    (APR, "P9", "CX", "PL201", "F1", 9, "B1"),  # rejected: unknown_company
)
# The failure of a month's snapshot step (break_month): what an overflow raised.
BREAK_SQL = """
CREATE FUNCTION public.cmdm_test_break_month() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
        MESSAGE = 'numeric field overflow';
END $$;
CREATE TRIGGER cmdm_test_break_month
    BEFORE INSERT OR UPDATE ON customer.fct_customer_plan_monthly_status
    FOR EACH ROW WHEN (NEW.snapshot_month = '{month_end}')
    EXECUTE FUNCTION public.cmdm_test_break_month();
"""
REPAIR_SQL = """
DROP TRIGGER cmdm_test_break_month ON customer.fct_customer_plan_monthly_status;
DROP FUNCTION public.cmdm_test_break_month();
"""
DOMAIN = "annuity_performance"
OUTPUTS = (
    "customer.customer_plan_contract",
    "customer.fct_customer_business_monthly_status",
    "customer.fct_customer_plan_monthly_status",
)
FORMATS = "use 2026-01, 202601 or 2026-01-31"

INSERT_FACTS = (
    'INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码",'
    ' "组合代码", "期末资产规模", "机构代码") VALUES (%s, %s, %s, %s, %s, %s, %s)'
)


def hooks_off(url: str) -> psycopg.Connection:
    """A connection whose fact writes do not run the hooks at commit."""
    return psycopg.connect(url, options="-c cmdm.post_hooks=off")


@pytest.fixture
def url(rules_url: str) -> str:
    with hooks_off(rules_url) as conn:
        conn.cursor().executemany(
            'INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES (%s, %s)',
            [("C1", "甲公司"), ("C2", "乙公司")],
        )
        conn.cursor().executemany(INSERT_FACTS, FACTS)
    return rules_url


def cli(url: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--database-url", url])


def ok(url: str, *args: str) -> str:
    result = cli(url, *args)
    assert result.exit_code == 0, result.output
    return result.output


def ok_json(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json"))


def error_line(result: Any) -> str:
    """The one line a failing command prints."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


def break_month(url: str, month: date) -> None:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    month_end = date.fromordinal(following.toordinal() - 1)
    with hooks_off(url) as conn:
        conn.execute(INSERT_FACTS, (month, "P1", "C1", "PL201", "X1", 1, "B1"))
        conn.execute(BREAK_SQL.format(month_end=month_end.isoformat()))


def repair_month(url: str) -> None:
    with hooks_off(url) as conn:
        conn.execute('DELETE FROM business."规模明细" WHERE "组合代码" = %s', ("X1",))
        conn.execute(REPAIR_SQL)


def hook_runs(url: str, where: str = "true") -> list[tuple]:
    """(period, step, outcome, trigger_kind, backfill_id) of cmdm.hook_run, in id order."""
    return query(
        url,
        "SELECT to_char(period, 'YYYY-MM'), step, outcome, trigger_kind, backfill_id"
        f" FROM cmdm.hook_run WHERE {where} ORDER BY hook_run_id",
    )


def dump(url: str, tables: tuple[str, ...] = OUTPUTS) -> dict[str, list[str]]:
    """Every row of the tables, every column (ids and timestamps too), sorted."""
    return {
        t: sorted(r[0] for r in query(url, f"SELECT to_jsonb(x)::text FROM {t} x")) for t in tables
    }


def business_state(url: str) -> dict[str, list[str]]:
    """The output tables without ids and timestamps: what a rebuild must reproduce."""
    return {
        t: sorted(
            r[0]
            for r in query(
                url,
                f"SELECT (to_jsonb(x) - 'contract_id' - 'key_id' - 'created_at'"
                f" - 'updated_at')::text"
                f" FROM {t} x",
            )
        )
        for t in OUTPUTS
    }


def steps(runs: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["period"], r["step"], r["outcome"]) for r in runs]


# --- run-hooks, sync, snapshot ----------------------------------------------------------------


def test_run_hooks(url: str) -> None:
    data = ok_json(url, "run-hooks", "--period", "2024-01")
    assert data["domain"] == DOMAIN and data["period"] == "2024-01"
    assert steps(data["runs"]) == [
        ("2024-01", "contract_sync", "succeeded"),
        ("2024-01", "snapshot_refresh", "succeeded"),
        ("2024-02", "snapshot_refresh", "succeeded"),  # the next loaded month depends on it
    ]
    sync, january, _ = data["runs"]
    assert sync["counts"]["keys_seen"] == 2 and sync["counts"]["versions_opened"] == 2
    assert sync["counts"]["snapshot_months"] == ["2024-01-31", "2024-02-29"]
    assert january["counts"]["business_inserted"] == 2 and january["counts"]["plan_rows"] == 2
    # logged, with these ids, as the CLI's
    ids = [r["hook_run_id"] for r in data["runs"]]
    assert query(
        url,
        "SELECT hook_run_id, to_char(period, 'YYYY-MM-DD'), step, trigger_kind, outcome,"
        " backfill_id FROM cmdm.hook_run ORDER BY 1",
    ) == [
        (ids[0], "2024-01-31", "contract_sync", "cli", "succeeded", None),
        (ids[1], "2024-01-31", "snapshot_refresh", "cli", "succeeded", None),
        (ids[2], "2024-02-29", "snapshot_refresh", "cli", "succeeded", None),
    ]
    assert query(url, "SELECT count(*) FROM customer.customer_plan_contract") == [(2,)]

    human = ok(url, "run-hooks", "--period", "202402", "--domain", DOMAIN)
    assert "contract_sync" in human and "snapshot_refresh" in human
    assert "keys 2 seen" in human and "1 rejected" in human  # the null-key row of February
    assert "committed 4 step runs of annuity_performance for 2024-02" in human
    assert query(url, "SELECT count(*) FROM cmdm.hook_run") == [(7,)]


def test_sync_then_snapshot(url: str) -> None:
    row = ok_json(url, "sync", "--period", "2024-01-31")
    assert row["period"] == "2024-01-31"
    assert (row["keys_seen"], row["versions_opened"], row["rejected_null_key"]) == (2, 2, 0)
    assert row["snapshot_months"] == ["2024-01-31", "2024-02-29"]
    assert query(url, "SELECT count(*) FROM customer.customer_plan_contract") == [(2,)]

    human = ok(url, "sync", "--period", "2024-02")
    assert human.splitlines()[0] == (
        "synced 2024-02: keys 2 seen, 2 changed; versions +1 ~2 -0 reflagged 0; "
        "1 rejected (null_key 1)"
    )
    assert "snapshot months to refresh: 2024-02, 2024-03, 2024-04" in human
    assert "cmdm snapshot --period" in human

    refreshed = ok_json(url, "snapshot", "--period", "2024-01")
    assert refreshed["snapshot_month"] == "2024-01-31"
    assert (refreshed["business_rows"], refreshed["business_inserted"]) == (2, 2)
    assert (refreshed["plan_rows"], refreshed["plan_inserted"]) == (2, 2)
    assert query(
        url,
        "SELECT company_id, product_line_code, aum_balance::text"
        " FROM customer.fct_customer_business_monthly_status ORDER BY 1",
    ) == [("C1", "PL201", "100.00"), ("C2", "PL202", "50.00")]
    again = ok(url, "snapshot", "--period", "2024-01")
    assert again.strip() == (
        "refreshed 2024-01: business 2 rows (+0 ~0 -0); plan 2 rows (+0 ~0 -0)"
    )
    # neither is a hook run
    assert query(url, "SELECT count(*) FROM cmdm.hook_run") == [(0,)]


@pytest.mark.parametrize(
    "args",
    [
        ["run-hooks", "--period", "2024-13"],
        ["sync", "--period", "24-01"],
        ["snapshot", "--period", "January"],
        ["backfill", "--from", "2024-01", "--to", "2024-1"],
        ["rebuild", "--from", "20240", "--to", "2024-02"],
        ["hooks", "runs", "--period", "2024-02-30"],
    ],
)
def test_bad_period_is_one_line(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--database-url", "postgresql://nobody@127.0.0.1:1/x"])
    line = error_line(result)
    assert "is not a month" in line and FORMATS in line


def test_backwards_range_is_one_line() -> None:
    for command in ("backfill", "rebuild"):
        result = runner.invoke(
            app, [command, "--from", "2024-05", "--to", "2024-01", "--database-url", "x"]
        )
        assert (
            error_line(result) == "Error: --from 2024-05 is after --to 2024-01; swap the two months"
        )


def test_unknown_domain(url: str) -> None:
    expected = (
        "Error: unknown post-ETL hook domain 'nope'; known domains: annuity_performance "
        "(see `cmdm hooks list`)"
    )
    for args in (
        ["run-hooks", "--period", "2024-01", "--domain", "nope"],
        ["backfill", "--from", "2024-01", "--to", "2024-02", "--domain", "nope", "--json"],
        ["rebuild", "--from", "2024-01", "--to", "2024-02", "--domain", "nope", "--json"],
        ["hooks", "enable", "nope"],
        ["hooks", "disable", "nope"],
    ):
        assert error_line(cli(url, *args)) == expected, args
    # a refusal is not a run: nothing logged, nothing started
    assert query(url, "SELECT count(*) FROM cmdm.hook_run") == [(0,)]
    assert query(url, "SELECT count(*) FROM cmdm.backfill_run") == [(0,)]


# --- hooks list / enable / disable / runs --------------------------------------------------


def test_disable_refuses_runs_and_loads_are_logged_as_skipped(url: str) -> None:
    listed = ok_json(url, "hooks", "list")
    assert [(d["domain"], d["enabled"]) for d in listed] == [(DOMAIN, True)]
    assert [(s["step_order"], s["step"], s["enabled"]) for s in listed[0]["steps"]] == [
        (1, "contract_sync", True),
        (2, "snapshot_refresh", True),
    ]

    off = ok_json(url, "hooks", "disable", DOMAIN)
    assert off["domain"] == DOMAIN and off["enabled"] is False
    assert query(url, "SELECT enabled FROM cmdm.hook_domain WHERE domain = %s", (DOMAIN,)) == [
        (False,)
    ]
    assert "annuity_performance off" in ok(url, "hooks", "list")

    disabled = (
        "Error: post-ETL hook domain 'annuity_performance' is disabled; enable it with "
        "`cmdm hooks enable annuity_performance`"
    )
    assert error_line(cli(url, "run-hooks", "--period", "2024-01")) == disabled
    assert error_line(cli(url, "backfill", "--from", "2024-01", "--to", "2024-02")) == disabled
    assert query(url, "SELECT count(*) FROM cmdm.hook_run") == [(0,)]

    # a load while the domain is off commits without the hooks; the trigger logs the skip
    with psycopg.connect(url) as conn:
        conn.execute(INSERT_FACTS, (MAY, "P1", "C1", "PL201", "F1", 100, "B1"))
    (skipped,) = ok_json(url, "hooks", "runs")
    assert (skipped["period"], skipped["step"], skipped["outcome"]) == ("2024-05", "all", "skipped")
    assert skipped["trigger_kind"] == "trigger"
    assert query(url, "SELECT count(*) FROM customer.customer_plan_contract") == [(0,)]

    on = ok(url, "hooks", "enable", DOMAIN)
    assert on.startswith("annuity_performance on")
    assert "1. contract_sync" in on and "2. snapshot_refresh" in on
    ok(url, "run-hooks", "--period", "2024-01")
    assert query(url, "SELECT count(*) FROM customer.customer_plan_contract") == [(2,)]


def test_runs_filters_newest_first(url: str) -> None:
    ok(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    break_month(url, APR)
    assert cli(url, "run-hooks", "--period", "2024-04").exit_code == 1

    everything = ok_json(url, "hooks", "runs", "--limit", "100")
    in_db = query(url, "SELECT hook_run_id FROM cmdm.hook_run ORDER BY hook_run_id DESC")
    assert [r["hook_run_id"] for r in everything] == [r[0] for r in in_db]
    assert len(everything) == 9  # 4 months x 2 steps, and the failure

    newest = ok_json(url, "hooks", "runs", "--limit", "3")
    assert [r["hook_run_id"] for r in newest] == [r[0] for r in in_db[:3]]

    february = ok_json(url, "hooks", "runs", "--period", "2024-02", "--domain", DOMAIN)
    assert [(r["period"], r["step"]) for r in february] == [
        ("2024-02", "snapshot_refresh"),
        ("2024-02", "contract_sync"),
    ]
    assert all(r["backfill_id"] == 1 and r["trigger_kind"] == "cli" for r in february)

    (failed,) = ok_json(url, "hooks", "runs", "--failed")
    assert (failed["period"], failed["step"], failed["outcome"]) == (
        "2024-04",
        "snapshot_refresh",
        "failed",
    )
    # the step and period are columns of the log: the error is the cause alone
    assert failed["error"] == "numeric field overflow"
    human = ok(url, "hooks", "runs", "--failed")
    assert "numeric field overflow" in human and "2024-04" in human
    assert ok_json(url, "hooks", "runs", "--domain", "other") == []
    assert ok(url, "hooks", "runs", "--domain", "other").strip() == "no hook runs match"


# --- failures -------------------------------------------------------------------------------


def test_failed_run_is_rolled_back_and_logged(url: str) -> None:
    ok(url, "run-hooks", "--period", "2024-01")
    ok(url, "run-hooks", "--period", "2024-02")
    before = dump(url)
    last = query(url, "SELECT max(hook_run_id) FROM cmdm.hook_run")[0][0]
    break_month(url, MAR)

    line = error_line(cli(url, "run-hooks", "--period", "2024-03"))
    (failed_id,) = query(url, "SELECT hook_run_id FROM cmdm.hook_run WHERE outcome = 'failed'")[0]
    assert line == (
        "Error: post-ETL hook annuity_performance: step snapshot_refresh for period 2024-03 "
        "failed: numeric field overflow; nothing was written (rolled back); fix the cause and "
        f"run it again; logged as failed hook run #{failed_id} (`cmdm hooks runs --failed`)"
    )
    # the sync of March succeeded inside the run, and was rolled back with it
    assert dump(url) == before
    assert hook_runs(url, f"hook_run_id > {last}") == [
        ("2024-03", "snapshot_refresh", "failed", "cli", None)
    ]
    (row,) = query(
        url,
        "SELECT error, rules_sha256 = (SELECT sha256 FROM cmdm.rule_deployment"
        " ORDER BY deployment_id DESC LIMIT 1), duration IS NOT NULL FROM cmdm.hook_run"
        " WHERE hook_run_id = %s",
        (failed_id,),
    )
    assert row == ("numeric field overflow", True, True)

    status = ok_json(url, "status")
    assert [(f["hook_run_id"], f["resolved"]) for f in status["failures"]] == [(failed_id, False)]

    repair_month(url)
    ok(url, "run-hooks", "--period", "2024-03")
    status = ok_json(url, "status")
    assert [(f["hook_run_id"], f["resolved"]) for f in status["failures"]] == [(failed_id, True)]


def test_a_failing_sync_alone_is_one_line(url: str) -> None:
    break_month(url, JAN)
    ok(url, "sync", "--period", "2024-01")  # the sync does not store AUM
    line = error_line(cli(url, "snapshot", "--period", "2024-01"))
    assert line == "Error: snapshot refresh of 2024-01 failed: numeric field overflow"
    assert query(url, "SELECT count(*) FROM customer.fct_customer_plan_monthly_status") == [(0,)]


def test_a_failed_step_names_itself_in_structured_detail(url: str) -> None:
    """cmdm.run_hooks' error carries the step and month as a JSON DETAIL (programs read it
    without parsing the message), with the cause's SQLSTATE and message."""
    ok(url, "run-hooks", "--period", "2024-01")
    break_month(url, MAR)
    with psycopg.connect(url) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(
            "SELECT * FROM cmdm.run_hooks('annuity_performance', ARRAY['2024-03-01'::date])"
        )
    diag = caught.value.diag
    assert diag.sqlstate == "22003"  # numeric_value_out_of_range, kept from the cause
    found = json.loads(diag.message_detail)
    assert set(found) == {"domain", "step", "period", "message", "detail"}
    assert (found["domain"], found["step"], found["period"], found["message"]) == (
        "annuity_performance",
        "snapshot_refresh",
        "2024-03",
        "numeric field overflow",
    )
    assert diag.message_primary.startswith(
        "post-ETL hook annuity_performance: step snapshot_refresh for period 2024-03 failed: "
    )


# --- backfill -------------------------------------------------------------------------------


def test_backfill_defers_later_months(url: str) -> None:
    data = ok_json(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    assert (data["backfill_id"], data["resumed"], data["finished"]) == (1, False, True)
    assert (data["from"], data["to"], data["months_total"]) == ("2024-01", "2024-04", 4)
    # each month refreshes itself (and earlier months that depend on it): never a later
    # month of the range, which refreshes itself afterwards
    assert [(m["month"], steps(m["runs"])) for m in data["months"]] == [
        (
            f"2024-0{i}",
            [
                (f"2024-0{i}", "contract_sync", "succeeded"),
                (f"2024-0{i}", "snapshot_refresh", "succeeded"),
            ],
        )
        for i in (1, 2, 3, 4)
    ]
    assert hook_runs(url, "step = 'contract_sync'") == [
        (f"2024-0{i}", "contract_sync", "succeeded", "cli", 1) for i in (1, 2, 3, 4)
    ]
    assert query(
        url,
        "SELECT domain, from_period::text, to_period::text, finished_at IS NOT NULL"
        " FROM cmdm.backfill_run",
    ) == [(DOMAIN, "2024-01-31", "2024-04-30", True)]
    # the same as the months' hooks run one by one, without deferring
    backfilled = business_state(url)
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {', '.join(OUTPUTS)}")
    for month in ("2024-01", "2024-02", "2024-03", "2024-04"):
        ok(url, "run-hooks", "--period", month)
    assert business_state(url) == backfilled

    # finished: the same range again is a new backfill that runs every month
    again = ok_json(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    assert (again["backfill_id"], again["resumed"], len(again["months"])) == (2, False, 4)


def test_failed_backfill_resumes_where_it_stopped(url: str) -> None:
    break_month(url, MAR)
    line = error_line(cli(url, "backfill", "--from", "2024-01", "--to", "2024-04", "--json"))
    (failed_id,) = query(url, "SELECT hook_run_id FROM cmdm.hook_run WHERE outcome = 'failed'")[0]
    assert line == (
        "Error: backfill #1 stopped at 2024-03 (2 of 4 months done): post-ETL hook "
        "annuity_performance: step snapshot_refresh for period 2024-03 failed: numeric field "
        "overflow; nothing was written (rolled back); fix the cause and run the same command "
        f"again to resume; logged as failed hook run #{failed_id} (`cmdm hooks runs --failed`)"
    )
    assert hook_runs(url) == [
        ("2024-01", "contract_sync", "succeeded", "cli", 1),
        ("2024-01", "snapshot_refresh", "succeeded", "cli", 1),
        ("2024-02", "contract_sync", "succeeded", "cli", 1),
        ("2024-02", "snapshot_refresh", "succeeded", "cli", 1),
        ("2024-03", "snapshot_refresh", "failed", "cli", 1),
    ]
    assert query(url, "SELECT count(*) FROM customer.fct_customer_business_monthly_status") == [
        (4,)  # January and February, two each: committed
    ]
    (unfinished,) = ok_json(url, "status")["backfills"]
    assert (unfinished["backfill_id"], unfinished["months_done"], unfinished["months_total"]) == (
        1,
        2,
        4,
    )
    assert (unfinished["from_period"], unfinished["to_period"]) == ("2024-01", "2024-04")
    assert "unfinished backfill #1 of annuity_performance 2024-01..2024-04: 2 of 4 months done" in (
        ok(url, "status")
    )

    repair_month(url)
    last = query(url, "SELECT max(hook_run_id) FROM cmdm.hook_run")[0][0]
    human = ok(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    assert "resuming backfill #1: 2 of 4 months done" in human
    assert "finished backfill #1: ran 2 of 4 months (2 done before)" in human
    # only March and April ran, under the same backfill
    assert hook_runs(url, f"hook_run_id > {last}") == [
        ("2024-03", "contract_sync", "succeeded", "cli", 1),
        ("2024-03", "snapshot_refresh", "succeeded", "cli", 1),
        ("2024-04", "contract_sync", "succeeded", "cli", 1),
        ("2024-04", "snapshot_refresh", "succeeded", "cli", 1),
    ]
    assert query(url, "SELECT backfill_id, finished_at IS NOT NULL FROM cmdm.backfill_run") == [
        (1, True)
    ]
    assert ok_json(url, "status")["backfills"] == []
    # and the result is what a rebuild computes
    assert (
        ok_json(url, "rebuild", "--from", "2024-01", "--to", "2024-04", "--dry-run")["changes"] == 0
    )


def test_interrupted_backfill_resumes(url: str) -> None:
    """Ctrl-C after the second month: the two months stay committed, the rest resumes."""
    with psycopg.connect(url) as conn:
        job = start(conn, DOMAIN, JAN, APR)

        def interrupt(month_run: Any) -> None:
            if month_run.month == FEB:
                raise KeyboardInterrupt

        with pytest.raises(BackfillError, match=r"backfill #1 stopped at 2024-02 .*interrupted"):
            run_backfill(conn, url, job, interrupt)
    assert hook_runs(url, "step = 'contract_sync'") == [
        ("2024-01", "contract_sync", "succeeded", "cli", 1),
        ("2024-02", "contract_sync", "succeeded", "cli", 1),
    ]
    data = ok_json(url, "backfill", "--from", "2024-01-31", "--to", "202404")
    assert (data["backfill_id"], data["resumed"]) == (1, True)
    assert data["months_done_before"] == ["2024-01", "2024-02"]
    assert [m["month"] for m in data["months"]] == ["2024-03", "2024-04"]

    # --restart: a new backfill of every month, even when one is unfinished
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE cmdm.backfill_run SET finished_at = NULL")
    restarted = ok_json(url, "backfill", "--from", "2024-01", "--to", "2024-04", "--restart")
    assert (restarted["backfill_id"], restarted["resumed"], len(restarted["months"])) == (
        2,
        False,
        4,
    )


# --- rebuild --------------------------------------------------------------------------------


def corrupt(url: str) -> None:
    """Three derived rows no longer what the facts give."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE customer.customer_plan_contract SET contract_status = '停缴'"
            " WHERE company_id = 'C1' AND plan_code = 'P1'"
        )
        conn.execute(
            "UPDATE customer.fct_customer_business_monthly_status SET aum_balance = 1"
            " WHERE snapshot_month = '2024-02-29' AND company_id = 'C1'"
        )
        conn.execute(
            "DELETE FROM customer.fct_customer_plan_monthly_status"
            " WHERE snapshot_month = '2024-03-31' AND plan_code = 'P3'"
        )


def test_rebuild_dry_run_writes_nothing(url: str) -> None:
    ok(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    clean = ok_json(url, "rebuild", "--from", "2024-01", "--to", "2024-04", "--dry-run")
    assert clean["changes"] == 0 and clean["dry_run"] is True and clean["committed"] is False

    corrupt(url)
    tables = (*OUTPUTS, "cmdm.hook_run", "cmdm.backfill_run", "cmdm.rejected_fact")
    before = dump(url, tables)
    data = ok_json(url, "rebuild", "--from", "2024-01", "--to", "2024-04", "--dry-run")
    assert dump(url, tables) == before  # not even the hook runs were kept
    assert (data["from"], data["to"], data["changes"]) == ("2024-01", "2024-04", 4)
    (revision, sha256) = query(
        url, "SELECT revision, sha256 FROM cmdm.rule_deployment ORDER BY deployment_id DESC"
    )[0]
    assert data["rules"] == {"revision": revision, "sha256": sha256}
    contract = data["contract"]
    assert (contract["added"], contract["removed"]) == (1, 1)
    (change,) = contract["sample"]
    assert change["kind"] == "changed"
    assert change["key"] == {
        "company_id": "C1",
        "plan_code": "P1",
        "product_line_code": "PL201",
        "valid_from": "2024-01-31",
    }
    assert (change["before"]["contract_status"], change["after"]["contract_status"]) == (
        "停缴",
        "正常",
    )
    assert change["after"]["valid_to"] == "9999-12-31"
    business, plan = data["snapshots"]
    assert business["table"] == "customer.fct_customer_business_monthly_status"
    assert (business["inserted"], business["updated"], business["deleted"]) == (0, 1, 0)
    (row,) = business["sample"]
    assert (row["before"]["aum_balance"], row["after"]["aum_balance"]) == ("1.00", "100.00")
    assert plan["table"] == "customer.fct_customer_plan_monthly_status"
    assert (plan["inserted"], plan["updated"], plan["deleted"]) == (1, 0, 0)
    (row,) = plan["sample"]
    assert row["kind"] == "added" and row["before"] is None
    assert row["key"] == {
        "snapshot_month": "2024-03-31",
        "company_id": "C1",
        "plan_code": "P3",
        "product_line_code": "PL203",
    }
    assert [m["month"] for m in data["months"]] == ["2024-01", "2024-02", "2024-03", "2024-04"]

    human = ok(url, "rebuild", "--from", "2024-01", "--to", "2024-04", "--dry-run")
    for text in (
        "customer.customer_plan_contract: 1 added, 1 removed",
        "customer.fct_customer_business_monthly_status: 0 inserted, 1 updated, 0 deleted",
        "customer.fct_customer_plan_monthly_status: 1 inserted, 0 updated, 0 deleted",
        "changed C1/P1/PL201/2024-01-31: contract_status: 停缴 → 正常",
        "changed 2024-02-29/C1/PL201: aum_balance: 1.00 → 100.00",
        "added   2024-03-31/C1/P3/PL203:",
        "dry run: 4 changed rows; rolled back, nothing was written",
    ):
        assert text in human, text
    assert dump(url, tables) == before

    # a range is widened to whole years (annual statuses are decided per year): a rebuild of
    # March..April also repairs February's corruption, and says so
    later = ok_json(url, "rebuild", "--from", "2024-03", "--to", "2024-04", "--dry-run")
    assert (later["requested"], later["from"], later["to"]) == (
        ["2024-03", "2024-04"],
        "2024-01",
        "2024-04",
    )
    assert [(d["inserted"], d["updated"], d["deleted"]) for d in later["snapshots"]] == [
        (0, 1, 0),
        (1, 0, 0),
    ]
    assert [y["year"] for y in later["years"]] == [2024]
    human = ok(url, "rebuild", "--from", "2024-03", "--to", "2024-04", "--dry-run")
    assert "asked for 2024-03..2024-04, widened to whole years" in human
    assert "annual statuses of 2024: decided again from 2024-01" in human
    sample = ok_json(
        url, "rebuild", "--from", "2024-01", "--to", "2024-04", "--dry-run", "--sample", "0"
    )
    assert sample["changes"] == 4 and sample["contract"]["sample"] == []


def test_rebuild_commits_what_a_fresh_rebuild_gives(url: str) -> None:
    ok(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    corrupt(url)
    with hooks_off(url) as conn:  # facts changed behind the hooks' back
        conn.execute(INSERT_FACTS, (MAR, "P2", "C2", "PL202", "F1", 20, "B2"))
        conn.execute(
            'DELETE FROM business."规模明细" WHERE "计划代码" = \'P3\' AND "月度" = %s', (APR,)
        )
    dry = ok_json(url, "rebuild", "--from", "2024-01", "--to", "2024-04", "--dry-run")
    runs = query(url, "SELECT count(*) FROM cmdm.hook_run")

    data = ok_json(url, "rebuild", "--from", "2024-01", "--to", "2024-04")
    assert data["committed"] is True and data["dry_run"] is False
    assert data["changes"] == dry["changes"] > 4
    assert data["contract"] == dry["contract"] and data["snapshots"] == dry["snapshots"]
    # its hook runs are kept, without a backfill id
    assert query(url, "SELECT count(*) FROM cmdm.hook_run") == [(runs[0][0] + 8,)]
    assert query(
        url,
        "SELECT count(*) FROM cmdm.hook_run WHERE hook_run_id > (SELECT max(hook_run_id) - 8"
        " FROM cmdm.hook_run) AND trigger_kind = 'cli' AND backfill_id IS NULL",
    ) == [(8,)]
    rebuilt = business_state(url)
    human = ok(url, "rebuild", "--from", "2024-01", "--to", "2024-04")
    assert "committed: 0 changed rows" in human

    # a fresh rebuild: no history, every month synced and refreshed in order
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {', '.join(OUTPUTS)}")
    ok(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    assert business_state(url) == rebuilt
    # C2 came back in March, C1's P3 is gone in April
    assert query(
        url,
        "SELECT company_id, plan_code FROM customer.fct_customer_plan_monthly_status"
        " WHERE snapshot_month = '2024-04-30' AND aum_balance > 0 ORDER BY 1, 2",
    ) == [("C1", "P1")]
    assert query(
        url,
        "SELECT aum_balance::text FROM customer.fct_customer_plan_monthly_status"
        " WHERE snapshot_month = '2024-03-31' AND plan_code = 'P2'",
    ) == [("20.00",)]


def test_failing_rebuild_changes_nothing(url: str) -> None:
    ok(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    corrupt(url)
    break_month(url, APR)
    before = dump(url)
    line = error_line(cli(url, "rebuild", "--from", "2024-01", "--to", "2024-04", "--json"))
    assert line.startswith(
        "Error: rebuild 2024-01..2024-04 failed at 2024-04, nothing was changed: post-ETL hook "
        "annuity_performance: step snapshot_refresh for period 2024-04 failed: numeric field "
        "overflow"
    )
    assert dump(url) == before
    assert hook_runs(url, "outcome = 'failed'") == [
        ("2024-04", "snapshot_refresh", "failed", "cli", None)
    ]
    # a dry run that fails logs nothing
    error_line(cli(url, "rebuild", "--from", "2024-04", "--to", "2024-04", "--dry-run", "--json"))
    assert len(hook_runs(url, "outcome = 'failed'")) == 1


# --- status ---------------------------------------------------------------------------------


def test_status(url: str) -> None:
    ok(url, "backfill", "--from", "2024-01", "--to", "2024-04")
    data = ok_json(url, "status")
    (revision, sha256, by) = query(
        url,
        "SELECT revision, sha256, deployed_by FROM cmdm.rule_deployment"
        " ORDER BY deployment_id DESC LIMIT 1",
    )[0]
    assert (data["rules"]["revision"], data["rules"]["sha256"]) == (revision, sha256)
    assert data["rules"]["deployed_by"] == by
    assert data["drift"] == {"checked": True, "in_sync": True, "problems": [], "error": None}
    assert [(d["domain"], d["enabled"]) for d in data["domains"]] == [(DOMAIN, True)]
    newest = query(url, "SELECT hook_run_id FROM cmdm.hook_run ORDER BY hook_run_id DESC")
    assert [r["hook_run_id"] for r in data["last_runs"]] == [r[0] for r in newest]  # 8 < 10
    assert data["failures"] == [] and data["backfills"] == []
    assert data["rejects"] == [
        {"period": "2024-04", "reason": "unknown_company", "rows": 1},
        {"period": "2024-02", "reason": "null_key", "rows": 1},
    ]

    human = ok(url, "status")
    for text in (
        f"rules: {revision} (sha256 {sha256[:12]})",
        "drift: none",
        "hooks: annuity_performance on (contract_sync, snapshot_refresh)",
        "last hook runs",
        "recent failures: none",
        "unknown_company",
        "null_key",
        "unfinished backfills: none",
    ):
        assert text in human, text

    # a function changed by hand is drift; status still exits 0
    with psycopg.connect(url) as conn:
        conn.execute("COMMENT ON FUNCTION customer.loaded_months(date, date) IS 'edited'")
    drift = ok_json(url, "status")["drift"]
    assert drift["checked"] is True and drift["in_sync"] is False
    assert drift["problems"] == [
        "customer.loaded_months(date, date): its COMMENT no longer carries rules sha256 "
        f"{sha256[:12]}"
    ]
    assert "drift: 1 problem(s)" in ok(url, "status")
