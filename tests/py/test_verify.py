"""`cmdm verify` against real PostgreSQL: suites pass or fail as pgTAP says, and the
database is exactly as it was afterwards, whatever the suites did. The read-only suites, all
that run without --scratch, take no lock stronger than ACCESS SHARE on a database with
facts (read in pg_locks, per suite and from a second session while verify runs), and pass
for a role that only reads; --scratch is refused on such a database."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from dbutil import demo_database, execute, query, with_database
from typer.testing import CliRunner

from cmdm_admin import verify as verify_module
from cmdm_admin.cli import app
from cmdm_admin.demo import DemoSpec
from cmdm_admin.project import pgtap_dir
from cmdm_admin.verify import (
    READ_ONLY,
    SCRATCH,
    MetaCommand,
    SuiteResult,
    check_read_only,
    check_suite,
    parse_tap,
    scan_sql,
    suite_kind,
)

runner = CliRunner()


def snapshot(url: str) -> dict[str, object]:
    """What a suite could leave behind: extensions, relations, functions, and the row
    count of every ordinary table outside the system schemas."""
    tables = query(
        url,
        """SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname !~ '^pg_toast'
            ORDER BY 1""",
    )
    return {
        "extensions": query(url, "SELECT extname, extversion FROM pg_extension ORDER BY 1"),
        "relations": query(url, "SELECT count(*) FROM pg_class WHERE relpersistence <> 't'"),
        "functions": query(url, "SELECT count(*) FROM pg_proc"),
        "rows": {name: query(url, f"SELECT count(*) FROM {name}")[0][0] for (name,) in tables},
    }


def write_suite(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


#: A suite that changes the database in every way it can inside a transaction.
WRITING_SUITE = """
    BEGIN;
    SELECT plan(4);
    INSERT INTO mapping."产品线" VALUES ('VERIFY', 'written by a suite');
    CREATE TABLE public.verify_probe (x int, note text);
    INSERT INTO public.verify_probe VALUES (1), (2);
    COPY public.verify_probe (x, note) FROM STDIN (FORMAT csv);
    3,"COMMIT; it's data, not a statement"
    \\.
    CREATE FUNCTION public.verify_probe_fn() RETURNS int LANGUAGE sql BEGIN ATOMIC
        SELECT CASE WHEN true THEN 1 END; END;
    SELECT has_extension('pgtap', 'pgtap is there while the suite runs');
    SELECT is((SELECT count(*)::int FROM public.verify_probe), 3, 'the probe table has rows');
    SELECT ok(EXISTS (SELECT FROM mapping."产品线" WHERE "产品线代码" = 'VERIFY'),
              'the product line row is there');
    SELECT is(public.verify_probe_fn(), 1, 'the routine body with END inside it runs');
    SELECT * FROM finish();
    ROLLBACK;
"""

#: Statements after the suite's ROLLBACK run with psql's AUTOCOMMIT off: never committed.
AFTER_ROLLBACK_SUITE = """
    BEGIN;
    SELECT plan(1);
    SELECT pass('one test');
    SELECT * FROM finish();
    ROLLBACK;
    CREATE TABLE public.verify_after_rollback (x int);
    INSERT INTO mapping."产品线" VALUES ('AFTER', 'written after the ROLLBACK');
"""


SHIPPED = sorted(pgtap_dir().glob("*.sql"))
READ_ONLY_SUITES = [p for p in SHIPPED if suite_kind(p) == READ_ONLY]
SCRATCH_SUITES = [p for p in SHIPPED if suite_kind(p) == SCRATCH]
#: The ETL's tables and cmdm's, whose locks the read-only suites must keep to ACCESS SHARE.
OUR_SCHEMAS = "('mapping', 'business', 'customer', 'cmdm')"
#: A database with facts: inputs loaded month by month, outputs written by the hooks.
FACTS = DemoSpec(companies=10, months=2, seed=3)


@pytest.fixture
def facts_url(admin_url: str) -> Iterator[str]:
    with demo_database(admin_url, FACTS) as url:
        yield url


def test_every_shipped_suite_says_which_kind_it_is() -> None:
    for path in SHIPPED:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first in ("-- cmdm-verify: read-only", "-- cmdm-verify: scratch"), path.name
    for path in READ_ONLY_SUITES:
        check_read_only(path)  # none of its own statements writes
    # the structure of every table, the roles and privileges, the generated routines
    assert {p.name[:3] for p in READ_ONLY_SUITES} == {
        "010", "020", "030", "040", "050", "060", "070", "080", "090", "130"
    }  # fmt: skip
    assert {"031_contract_invariants.sql", "120_hooks.sql"} <= {p.name for p in SCRATCH_SUITES}


@pytest.mark.parametrize("scratch", [False, True], ids=["read-only", "scratch"])
def test_shipped_suites_run_to_their_end_and_change_nothing(rules_url: str, scratch: bool) -> None:
    before = snapshot(rules_url)
    assert "pgtap" not in [name for name, _ in before["extensions"]]
    args = ["verify", "--database-url", rules_url, "--json", *(["--scratch"] * scratch)]
    result = runner.invoke(app, args)
    report = json.loads(result.output)
    expected = SHIPPED if scratch else READ_ONLY_SUITES
    assert [Path(s["suite"]).name for s in report["suites"]] == [p.name for p in expected]
    skipped = [] if scratch else SCRATCH_SUITES
    assert [Path(s).name for s in report["skipped_scratch_suites"]] == [p.name for p in skipped]
    assert report["scratch"] is scratch
    for suite in report["suites"]:  # whatever they assert, every suite ran its whole plan
        assert suite["problems"] == [], suite
        assert suite["ran"] == suite["planned"] > 0, suite
    assert result.exit_code == (0 if report["ok"] else 1)
    assert snapshot(rules_url) == before


@pytest.mark.parametrize("scratch", [False, True], ids=["read-only", "scratch"])
def test_shipped_suites_pass(rules_url: str, scratch: bool) -> None:
    """On a database without facts, every suite passes: --scratch runs all of them."""
    args = ["verify", "--database-url", rules_url, *(["--scratch"] * scratch)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    ran = SHIPPED if scratch else READ_ONLY_SUITES
    assert len([ln for ln in lines if ln.startswith("ok ")]) == len(ran)
    summary = lines[-1] if scratch else lines[-2]
    assert summary.startswith(f"{len(ran)} suites, ")
    assert "tests passed; everything rolled back" in summary
    if not scratch:
        assert lines[-1].startswith(f"{len(SCRATCH_SUITES)} scratch suites not run")


# --- on a database with facts: read-only, and only ACCESS SHARE -------------------------

#: Appended in place of a suite's final ROLLBACK: the locks its transaction holds on the
#: relations of our schemas in any mode but ACCESS SHARE.
HELD_LOCKS = f"""
\\pset tuples_only on
\\pset fieldsep ' '
SELECT 'LOCK', l.relation::regclass, l.mode
  FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation
 WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.mode <> 'AccessShareLock'
   AND c.relnamespace::regnamespace::text IN {OUR_SCHEMAS};
ROLLBACK;
"""


def locks_held_by(url: str, suite: Path, tmp_path: Path) -> list[str]:
    """Run `suite` as `cmdm verify` does, but read pg_locks before its final ROLLBACK."""
    text = suite.read_text(encoding="utf-8").rstrip()
    assert text.endswith("ROLLBACK;"), suite.name
    probe = tmp_path / suite.name
    probe.write_text(text[: -len("ROLLBACK;")] + HELD_LOCKS, encoding="utf-8")
    target = verify_module.psql_target(url, "5s")
    run = subprocess.run(
        [
            verify_module.find_psql(),
            *verify_module.PSQL_OPTIONS,
            f"--dbname={target.conninfo}",
            "--command=BEGIN",
            "--command=CREATE EXTENSION IF NOT EXISTS pgtap",
            f"--file={probe}",
        ],
        env=os.environ | target.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "not ok" not in run.stdout, run.stdout  # on a database with facts, too
    return sorted(line for line in run.stdout.splitlines() if line.startswith("LOCK "))


def test_read_only_suites_hold_no_lock_stronger_than_access_share(
    facts_url: str, tmp_path: Path
) -> None:
    """What each read-only suite's transaction holds at its end, on any table of ours."""
    for suite in READ_ONLY_SUITES:
        assert locks_held_by(facts_url, suite, tmp_path) == [], suite.name
    # The probe sees what a scratch suite takes: rows written into the ETL's tables.
    scratch = locks_held_by(facts_url, pgtap_dir() / "021_input_tables_behaviour.sql", tmp_path)
    assert 'LOCK business."规模明细" RowExclusiveLock' in scratch


#: The ETL's tables (the five inputs, whose names the rules use) and their indexes.
ETL_RELATIONS = """
    WITH etl (oid) AS (
        SELECT unnest(ARRAY['mapping."产品线"', 'customer."年金客户"', 'business."规模明细"',
                            'customer."当年中标"', 'customer."当年流失"']::regclass[]))
    SELECT oid FROM etl
    UNION SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid IN (SELECT oid FROM etl)
"""


def locks_seen_while(url: str, action: Callable[[], object]) -> tuple[int, set[tuple]]:
    """Poll pg_locks from a second session while `action()` runs: how many polls saw a
    `cmdm verify` session, and every (relation, mode, is an ETL relation) such a session
    held on the relations of our schemas."""
    seen: set[tuple] = set()
    sightings = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal sightings
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.is_set():
                rows = conn.execute(
                    f"""SELECT a.pid, l.relation::regclass::text, l.mode,
                               l.relation IN ({ETL_RELATIONS})
                          FROM pg_catalog.pg_stat_activity a
                          LEFT JOIN pg_catalog.pg_locks l
                            ON l.pid = a.pid AND l.locktype = 'relation'
                           AND l.relation IN (SELECT c.oid FROM pg_catalog.pg_class c
                                               WHERE c.relnamespace::regnamespace::text
                                                     IN {OUR_SCHEMAS})
                         WHERE a.application_name = %s AND a.datname = current_database()""",
                    (verify_module.APPLICATION_NAME,),
                ).fetchall()
                sightings += bool(rows)
                seen.update(row[1:] for row in rows if row[1] is not None)
                time.sleep(0.001)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        action()
    finally:
        done.set()
        poller.join()
    return sightings, seen


def test_verify_on_a_database_with_facts_takes_only_access_share_on_etl_tables(
    facts_url: str,
) -> None:
    """From a second session, while `cmdm verify` runs: ACCESS SHARE on the ETL's tables,
    nothing else; on cmdm's own tables at most the ROW EXCLUSIVE that plpgsql_check's
    analysis takes for an instant (090), which conflicts with neither loads nor hooks."""
    before = snapshot(facts_url)
    results = []

    def run_verify() -> None:
        results.append(runner.invoke(app, ["verify", "--database-url", facts_url]))

    sightings, seen = locks_seen_while(facts_url, run_verify)
    assert results[0].exit_code == 0, results[0].output
    assert sightings > 10  # the poller watched the suites run
    on_etl = {(rel, mode) for rel, mode, etl in seen if etl}
    # The ETL's tables are read by 090's plpgsql_check analysis alone; where the server has
    # no plpgsql_check (PostgreSQL 18 here) that sweep is skipped, no read-only suite touches
    # them, and there is nothing to see beyond "no lock but ACCESS SHARE".
    if query(facts_url, "SELECT FROM pg_available_extensions WHERE name = 'plpgsql_check'"):
        assert 'business."规模明细"' in {rel for rel, _ in on_etl}  # it did read them
    assert {mode for _, mode in on_etl} <= {"AccessShareLock"}, on_etl
    # On cmdm's own tables plpgsql_check's planning of the routines' statements takes the
    # intent locks those statements would: ROW EXCLUSIVE for a write, ROW SHARE for a
    # SELECT … FOR UPDATE (cmdm.take_hook_lock). Neither conflicts with loads, hooks or
    # readers; only with DDL.
    intent = {"AccessShareLock", "RowShareLock", "RowExclusiveLock"}
    assert {mode for _, mode, _ in seen} <= intent, seen
    assert snapshot(facts_url) == before


def test_scratch_is_refused_on_a_database_with_facts(facts_url: str, tmp_path: Path) -> None:
    before = snapshot(facts_url)
    suite = write_suite(tmp_path, "010_writes.sql", WRITING_SUITE)
    for suites in ([], ["--suites", str(suite)]):  # the shipped suites, or one's own
        result = runner.invoke(app, ["verify", "--database-url", facts_url, "--scratch", *suites])
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith("Error: refusing --scratch: ")
        assert 'holds data (business."规模明细", ' in lines[0]
        assert "without --scratch runs the read-only suites" in lines[0]
    assert snapshot(facts_url) == before


@pytest.fixture
def reader_url(facts_url: str) -> Iterator[str]:
    """A login role that only reads (pg_read_all_data), with pgtap and plpgsql_check
    installed beforehand by a superuser: what a read-only verify needs. Where the server has
    no plpgsql_check (PostgreSQL 18 here), its sweep skips itself and needs nothing."""
    role, password = f"verify_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    execute(facts_url, f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE pg_read_all_data")
    execute(facts_url, "CREATE EXTENSION pgtap")
    if query(facts_url, "SELECT FROM pg_available_extensions WHERE name = 'plpgsql_check'"):
        execute(facts_url, "CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    try:
        yield url_for(facts_url, role, password)
    finally:
        execute(with_database(facts_url, "postgres"), f"DROP ROLE IF EXISTS {role}")


def test_a_role_that_only_reads_runs_the_read_only_suites(reader_url: str) -> None:
    result = runner.invoke(app, ["verify", "--database-url", reader_url])
    assert result.exit_code == 0, result.output
    assert f"{len(READ_ONLY_SUITES)} suites, " in result.output


def test_a_lock_held_elsewhere_fails_the_suite_after_lock_timeout(
    facts_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session holding ACCESS EXCLUSIVE (a deploy's ALTER, an ETL's TRUNCATE) on what a
    suite reads: the suite fails after lock_timeout instead of waiting behind it."""
    monkeypatch.setenv("CMDM_LOCK_TIMEOUT", "500ms")
    suite = pgtap_dir() / "080_generated_functions.sql"  # reads cmdm.managed_object
    with psycopg.connect(facts_url) as holder:
        holder.execute("LOCK TABLE cmdm.managed_object IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = runner.invoke(
            app, ["verify", "--database-url", facts_url, "--suites", str(suite), "--json"]
        )
        elapsed = time.monotonic() - started
        holder.rollback()
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["lock_timeout"] == "500ms"
    assert "canceling statement due to lock timeout" in report["suites"][0]["problems"][0]
    assert elapsed < 5, elapsed


# --- read-only and scratch suites of one's own --------------------------------------------


def test_a_read_only_suite_that_writes_is_refused(migrated_url: str, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        "010_claims_read_only.sql",
        """
        -- cmdm-verify: read-only
        BEGIN;
        SELECT plan(1);
        CREATE TEMP TABLE fine (x int) ON COMMIT DROP;
        CREATE FUNCTION pg_temp.fine() RETURNS int LANGUAGE sql AS 'SELECT 1';
        SELECT pass('temporary objects are fine');
        TRUNCATE business."规模明细";
        SELECT * FROM finish();
        ROLLBACK;
        """,
    )
    before = snapshot(migrated_url)
    result = runner.invoke(app, ["verify", "--database-url", migrated_url, "--suites", str(suite)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: refusing to run ")
    assert "010_claims_read_only.sql:7: TRUNCATE writes, in a suite marked" in lines[0]
    assert snapshot(migrated_url) == before


def test_without_scratch_only_read_only_suites_run(migrated_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    write_suite(
        folder,
        "010_reads.sql",
        """
        -- cmdm-verify: read-only
        BEGIN;
        SELECT plan(1);
        SELECT has_table('cmdm', 'hook_queue', 'the hook queue is there');
        SELECT * FROM finish();
        ROLLBACK;
        """,
    )
    write_suite(folder, "020_writes.sql", WRITING_SUITE)  # no marker: scratch
    result = runner.invoke(
        app, ["verify", "--database-url", migrated_url, "--suites", str(folder), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [Path(s["suite"]).name for s in report["suites"]] == ["010_reads.sql"]
    assert [Path(s).name for s in report["skipped_scratch_suites"]] == ["020_writes.sql"]
    only_scratch = runner.invoke(
        app, ["verify", "--database-url", migrated_url, "--suites", str(folder / "020_writes.sql")]
    )
    assert only_scratch.exit_code == 1
    line = " ".join(only_scratch.output.split())
    assert line.startswith("Error: no read-only suite to run: ")
    assert "020_writes.sql is a scratch suite; run scratch suites with --scratch" in line


def test_a_writing_suite_leaves_nothing_behind(migrated_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    write_suite(folder, "010_writes.sql", WRITING_SUITE)
    write_suite(folder, "020_after_rollback.sql", AFTER_ROLLBACK_SUITE)
    before = snapshot(migrated_url)
    result = runner.invoke(
        app,
        ["verify", "--database-url", migrated_url, "--suites", str(folder), "--json", "--scratch"],
    )
    assert result.exit_code == 0, result.output
    assert '"ok": true' in result.output
    assert '"pgtap_was_installed": false' in result.output
    assert snapshot(migrated_url) == before
    assert query(migrated_url, "SELECT to_regclass('public.verify_after_rollback')") == [(None,)]


def test_an_installed_pgtap_stays(migrated_url: str, tmp_path: Path) -> None:
    execute(migrated_url, "CREATE EXTENSION pgtap")
    suite = write_suite(tmp_path, "010_writes.sql", WRITING_SUITE)
    before = snapshot(migrated_url)
    result = runner.invoke(
        app, ["verify", "--database-url", migrated_url, "--suites", str(suite), "--scratch"]
    )
    assert result.exit_code == 0, result.output
    assert snapshot(migrated_url) == before


def test_a_failing_suite_exits_1_and_names_the_test(migrated_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    write_suite(
        folder,
        "010_fails.sql",
        """
        BEGIN;
        SELECT plan(3);
        SELECT pass('this one passes');
        SELECT ok(false, 'the deliberately failing test');
        SELECT * FROM todo('not yet', 1);
        SELECT ok(false, 'a known failure');
        SELECT * FROM finish();
        ROLLBACK;
        """,
    )
    write_suite(
        folder,
        "020_errors.sql",
        """
        BEGIN;
        SELECT plan(2);
        SELECT pass('before the error');
        SELECT 1 / 0;
        SELECT pass('never reached');
        SELECT * FROM finish();
        ROLLBACK;
        """,
    )
    write_suite(folder, "030_passes.sql", AFTER_ROLLBACK_SUITE)
    before = snapshot(migrated_url)
    result = runner.invoke(
        app, ["verify", "--database-url", migrated_url, "--suites", str(folder), "--scratch"]
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert any("010_fails.sql: 1 of 3 failed" in ln for ln in lines), result.output
    assert "          not ok 2 - the deliberately failing test" in lines
    assert not any("a known failure" in ln for ln in lines)  # TODO: not a failure
    assert any("020_errors.sql: 1 of 2 failed" in ln for ln in lines), result.output
    assert any("psql stopped (exit code 3)" in ln and "division by zero" in ln for ln in lines)
    assert any(ln.startswith("ok ") and "030_passes.sql (1 test)" in ln for ln in lines)
    assert lines[-1].startswith("3 suites, 5 tests: 2 failed in 2 suites; everything rolled back")
    assert snapshot(migrated_url) == before


@pytest.mark.parametrize(
    ("statement", "label"),
    [
        ("COMMIT;", "top-level COMMIT"),
        ("end transaction;", "top-level END"),
        ("COMMIT AND CHAIN;", "top-level COMMIT"),
        ("PREPARE TRANSACTION 'x';", "top-level PREPARE TRANSACTION"),
        ("\\connect postgres", "\\connect opens a new session"),
        ("SELECT 'COMMIT' \\gexec", "\\gexec runs SQL built while the suite runs"),
    ],
)
def test_a_suite_that_could_commit_is_refused(
    migrated_url: str, tmp_path: Path, statement: str, label: str
) -> None:
    folder = tmp_path / "suites"
    write_suite(folder, "010_fine.sql", WRITING_SUITE)
    write_suite(
        folder,
        "020_commits.sql",
        f"""
        BEGIN;
        SELECT plan(1);
        CREATE TABLE public.verify_committed (x int);
        SELECT pass('created');
        {statement}
        """,
    )
    before = snapshot(migrated_url)
    result = runner.invoke(
        app, ["verify", "--database-url", migrated_url, "--suites", str(folder), "--scratch"]
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: refusing to run "), lines[0]
    assert f"020_commits.sql:5: {label}" in lines[0]
    assert snapshot(migrated_url) == before  # refused before any suite ran


def test_commit_in_strings_comments_and_bodies_is_not_a_commit(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        "010_quoted.sql",
        r"""
        -- COMMIT;
        /* nested /* COMMIT; */ still a comment; END; */
        BEGIN;
        CREATE TEMP TABLE t (x int) ON COMMIT DROP;
        SELECT 'COMMIT;', E'\'; COMMIT;', "COMMIT;""x", $$ COMMIT; $$, $f$ END; $f$;
        CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC
            SELECT CASE WHEN true THEN 1 END;
            SELECT 2;
        END;
        CREATE RULE r AS ON INSERT TO t DO INSTEAD (SELECT 1; NOTIFY x);
        \echo COMMIT;
        SELECT 1 \g
        ROLLBACK;
        """,
    )
    check_suite(suite)
    words = [item.words[0] for item in scan_sql(suite.read_text()) if hasattr(item, "words")]
    assert words == ["BEGIN", "CREATE", "SELECT", "CREATE", "CREATE", "SELECT", "ROLLBACK"]
    assert [i.name for i in scan_sql(suite.read_text()) if isinstance(i, MetaCommand)] == [
        "echo",
        "g",
    ]


def test_tap_directives_and_plans() -> None:
    result = SuiteResult(Path("x.sql"))
    parse_tap(
        result,
        '1..5\nok 1 - a\nnot ok 2 - b # has a hash\n# Failed test 2: "b"\n#   have: 1\n'
        "ok 3 # SKIP no reason\nnot ok 4 - d # TODO later\nok 5 - e # TODO unexpectedly ok\n"
        "# Looks like you failed 1 test of 5\n",
    )
    assert (result.planned, result.ran, result.passed, result.skipped, result.todo) == (
        5,
        5,
        2,
        1,
        2,
    )
    assert [f.name for f in result.failures] == ["2 - b # has a hash"]
    assert result.failures[0].diagnostics == ['Failed test 2: "b"', "have: 1"]
    assert result.problems == []
    short = SuiteResult(Path("y.sql"))
    parse_tap(short, "1..3\nok 1 - a\n")
    assert short.problems == ["planned 3 tests but ran 1"]
    assert short.failed == 2 and not short.ok


def test_no_suites_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", "--suites", str(tmp_path / "none*.sql")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no pgTAP suites found in ")
    assert len(result.output.strip().splitlines()) == 1


def test_a_bad_url_is_one_line_without_the_password() -> None:
    url = "postgresql://cmdm:s3cret-pw@127.0.0.1:1/nowhere"
    result = runner.invoke(app, ["verify", "--database-url", url])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: cannot connect to postgresql://cmdm:***@127.0.0.1:1/nowhere")
    assert "s3cret" not in result.output


def test_without_pgtap_on_the_server_the_package_is_named(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "EXTENSION", "pgtap_not_on_this_server")
    result = runner.invoke(app, ["verify", "--database-url", migrated_url])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "extension is not available on the server of" in lines[0]
    with psycopg.connect(migrated_url) as conn:  # the package of the server's own major
        major = conn.execute(
            "SELECT current_setting('server_version_num')::int / 10000"
        ).fetchone()[0]
    assert lines[0].endswith(f"install Debian's postgresql-{major}-pgtap on the database server")


def test_missing_psql_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(verify_module, "DEBIAN_PSQL", tmp_path / "psql")
    result = runner.invoke(app, ["verify", "--database-url", "postgresql://nobody@127.0.0.1:1/x"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: psql is not installed")
    assert "sudo apt-get install postgresql-client-15" in lines[0]


@pytest.fixture
def login_role(migrated_url: str) -> Iterator[tuple[str, str]]:
    """A role that logs in with a password (no passfile), dropped afterwards."""
    role, password = f"verify_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    execute(migrated_url, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        yield role, password
    finally:
        execute(with_database(migrated_url, "postgres"), f"DROP ROLE IF EXISTS {role}")


def url_for(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))


def test_a_role_that_cannot_create_pgtap_is_told_so(
    migrated_url: str, login_role: tuple[str, str]
) -> None:
    role, password = login_role
    before = snapshot(migrated_url)
    result = runner.invoke(app, ["verify", "--database-url", url_for(migrated_url, role, password)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: role {role} cannot create the pgtap extension in ")
    assert "permission denied" in lines[0]
    assert password not in result.output
    assert snapshot(migrated_url) == before


def test_the_password_stays_out_of_process_arguments(
    migrated_url: str,
    login_role: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role, password = login_role
    execute(migrated_url, f"ALTER ROLE {role} SUPERUSER")
    url = url_for(migrated_url, role, password)
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_run = subprocess.run

    def recording_run(argv, **kwargs):
        seen.append((list(argv), dict(kwargs.get("env") or {})))
        return real_run(argv, **kwargs)

    monkeypatch.setattr(verify_module.subprocess, "run", recording_run)
    suite = write_suite(tmp_path, "010_writes.sql", WRITING_SUITE)
    before = snapshot(migrated_url)
    result = runner.invoke(
        app, ["verify", "--database-url", url, "--suites", str(suite), "--scratch"]
    )
    assert result.exit_code == 0, result.output
    assert password not in result.output
    assert seen, "psql was not run"
    for argv, env in seen:
        assert not any(password in arg for arg in argv), argv
        assert env.get("PGPASSWORD") == password
    assert snapshot(migrated_url) == before
