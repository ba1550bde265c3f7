"""`cmdm verify` against real PostgreSQL: suites pass or fail as pgTAP says, and the
database is exactly as it was afterwards, whatever the suites did."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from dbutil import execute, query, with_database
from typer.testing import CliRunner

from cmdm_admin import verify as verify_module
from cmdm_admin.cli import app
from cmdm_admin.project import pgtap_dir
from cmdm_admin.verify import MetaCommand, SuiteResult, check_suite, parse_tap, scan_sql

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


def test_shipped_suites_run_to_their_end_and_change_nothing(rules_url: str) -> None:
    before = snapshot(rules_url)
    assert "pgtap" not in [name for name, _ in before["extensions"]]
    result = runner.invoke(app, ["verify", "--database-url", rules_url, "--json"])
    report = json.loads(result.output)
    shipped = sorted(pgtap_dir().glob("*.sql"))
    assert [Path(s["suite"]).name for s in report["suites"]] == [p.name for p in shipped]
    for suite in report["suites"]:  # whatever they assert, every suite ran its whole plan
        assert suite["problems"] == [], suite
        assert suite["ran"] == suite["planned"] > 0, suite
    assert result.exit_code == (0 if report["ok"] else 1)
    assert snapshot(rules_url) == before


def test_shipped_suites_pass(rules_url: str) -> None:
    result = runner.invoke(app, ["verify", "--database-url", rules_url])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    shipped = list(pgtap_dir().glob("*.sql"))
    assert len([ln for ln in lines if ln.startswith("ok ")]) == len(shipped)
    assert lines[-1].startswith(f"{len(shipped)} suites, ")
    assert "tests passed; everything rolled back" in lines[-1]


def test_a_writing_suite_leaves_nothing_behind(migrated_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    write_suite(folder, "010_writes.sql", WRITING_SUITE)
    write_suite(folder, "020_after_rollback.sql", AFTER_ROLLBACK_SUITE)
    before = snapshot(migrated_url)
    result = runner.invoke(
        app, ["verify", "--database-url", migrated_url, "--suites", str(folder), "--json"]
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
    result = runner.invoke(app, ["verify", "--database-url", migrated_url, "--suites", str(suite)])
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
    result = runner.invoke(app, ["verify", "--database-url", migrated_url, "--suites", str(folder)])
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
    result = runner.invoke(app, ["verify", "--database-url", migrated_url, "--suites", str(folder)])
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
    assert lines[0].endswith("install Debian's postgresql-15-pgtap on the database server")


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
    result = runner.invoke(app, ["verify", "--database-url", url, "--suites", str(suite)])
    assert result.exit_code == 0, result.output
    assert password not in result.output
    assert seen, "psql was not run"
    for argv, env in seen:
        assert not any(password in arg for arg in argv), argv
        assert env.get("PGPASSWORD") == password
    assert snapshot(migrated_url) == before
