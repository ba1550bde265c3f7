"""`cmdm deploy-rules` against real databases, each test on private copies of migrations/,
rules/ and sql/ (nothing is ever written into the checkout): deploy, redeploy (nothing),
plan, check, hand edits in the database, rollback with `downgrade rules@-1`, a new status column,
a failed deploy that leaves everything as it was, deploys while an ETL load holds the facts
table (unchanged triggers are left alone; a changed one gives up after lock_timeout, naming
what it waited for), stray and hand-edited revision files, pending revisions, and the
revision file's own format."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dbutil import execute, query
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cmdm_admin import deploy, migrate
from cmdm_admin.cli import app
from cmdm_admin.demo import DemoSpec, load_demo
from cmdm_admin.errors import MigrationError
from cmdm_admin.project import current_project, project_dir, sql_dir
from cmdm_admin.revision import payload_sha256 as computed_payload_sha256
from cmdm_admin.revision import py_literal, read_revision_file

runner = CliRunner()

#: The rules revisions committed in this project, oldest first. The tests deploy today's
#: rules on top of all but the newest (which they regenerate).
COMMITTED_RULES = tuple(sorted(p.stem for p in current_project().versions_dir.glob("*_rules_*.py")))
BASE_RULES = COMMITTED_RULES[:-1]
#: Where a workspace's database starts: cmdm's schema head and the base rules revision.
SCHEMA_HEAD = migrate.schema_head()
BASE_HEADS = tuple(sorted((BASE_RULES[-1], SCHEMA_HEAD)))


def next_number(after: int = 1) -> str:
    """The number of the `after`-th revision deployed on the base: one past the base's."""
    return f"{int(BASE_RULES[-1][:4]) + after:04d}"


def rules_head(url: str) -> str | None:
    """The database's revision on the rules branch (None: no rules deployed)."""
    heads = [h for h in migrate.current_heads(url) if "_rules_" in h]
    return heads[0] if heads else None


REVISION_NAME = re.compile(r"^(\d{4})_rules_([0-9a-f]{12})\.py$")
SNAPSHOT_TABLES = (
    "customer.fct_customer_business_monthly_status",
    "customer.fct_customer_plan_monthly_status",
)
IS_BIG = """
  is_big:
    description: Big customer (test status).
    grain: product_line
    rule: {field_compare: {field: 期末资产规模, op: gt, value: 1000000}}
"""


# --- fixtures and helpers ----------------------------------------------------------------


class Workspace:
    """Private copies of migrations/, rules/ and sql/, and a database at their head."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.migrations = root / "migrations"
        self.versions = self.migrations / "versions"
        self.rules = root / "rules"
        self.sql = root / "sql"
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(current_project().migrations_dir, self.migrations, ignore=ignore)
        shutil.copytree(current_project().rules_dir, self.rules)
        shutil.copytree(sql_dir(), self.sql)
        # The base rules revisions stay; the newest is what the tests make again.
        for path in self.versions.glob("*_rules_*.py"):
            if path.stem not in BASE_RULES:
                path.unlink()

    def target(self, rules: Path | None = None, sql: Path | None = None) -> deploy.Target:
        return deploy.prepare(
            self.url,
            rules_dir=rules or self.rules,
            sql_dir=sql or self.sql,
            migrations_dir=self.migrations,
        )

    def deploy(self, rules: Path | None = None, sql: Path | None = None) -> deploy.DeployResult:
        return deploy.deploy(self.target(rules, sql))

    def downgrade(self, revision: str = "rules@-1") -> None:
        migrate.downgrade(self.url, revision, self.migrations)

    def files(self) -> list[str]:
        return sorted(p.name for p in self.versions.iterdir())

    def rules_copy(self, name: str) -> Path:
        copy = self.root / name
        shutil.copytree(self.rules, copy)
        return copy

    def sql_copy(self, name: str) -> Path:
        copy = self.root / name
        shutil.copytree(self.sql, copy)
        return copy

    def cli(self, *args: str) -> Any:
        return runner.invoke(
            app,
            [
                "deploy-rules",
                "--database-url",
                self.url,
                "--rules-dir",
                str(self.rules),
                "--sql-dir",
                str(self.sql),
                "--migrations-dir",
                str(self.migrations),
                *args,
            ],
        )


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> Workspace:
    workspace = Workspace(tmp_path, database_url)
    migrate.upgrade(database_url, "heads", workspace.migrations)
    assert migrate.current_heads(database_url) == BASE_HEADS
    return workspace


def state(url: str) -> dict[str, Any]:
    """What a deploy may change, in a comparable form."""
    tables = ", ".join(
        f"'{t}'::regclass" for t in (*SNAPSHOT_TABLES, "customer.customer_plan_contract")
    )
    return {
        "version": migrate.current_heads(url),
        "routines": query(
            url,
            "SELECT p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid)), "
            "obj_description(p.oid, 'pg_proc'), pg_get_userbyid(p.proowner) "
            "FROM pg_proc p WHERE p.pronamespace IN "
            "('customer'::regnamespace, 'cmdm'::regnamespace) ORDER BY 1",
        ),
        "deployments": query(
            url,
            "SELECT revision, down_revision, sha256, functions, function_defs "
            "FROM cmdm.rule_deployment ORDER BY deployment_id",
        ),
        "managed": query(
            url,
            "SELECT object_type, object_identity, created_by FROM cmdm.managed_object "
            "ORDER BY object_type, object_identity",
        ),
        "columns": query(
            url,
            "SELECT attrelid::regclass::text, attname, format_type(atttypid, atttypmod) "
            f"FROM pg_attribute WHERE attrelid IN ({tables}) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY 1, 2",
        ),
        "triggers": query(
            url,
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal "
            "ORDER BY 1, 2",
        ),
    }


def routine_names(url: str) -> set[str]:
    return {row[0] for row in state(url)["routines"]}


def columns_of(url: str, table: str) -> set[str]:
    return {name for t, name, _ in state(url)["columns"] if t == table}


def hand_edit(url: str, identity: str) -> None:
    """CREATE OR REPLACE the routine with a changed body, as someone in psql would."""
    (definition,) = query(url, "SELECT pg_get_functiondef(to_regprocedure(%s))", (identity,))[0]
    edited = definition.replace("BEGIN", "BEGIN\n    -- a quick fix in production", 1)
    assert edited != definition
    execute(url, edited)


def add_is_big(rules: Path) -> None:
    statuses = rules / "statuses.yml"
    statuses.write_text(statuses.read_text().rstrip("\n") + "\n" + IS_BIG)


def ruff() -> Path:
    """ruff is a test dependency (pyproject's test extras): its absence is a failure."""
    path = Path(sys.executable).parent / "ruff"
    assert path.exists(), f"ruff is missing next to {sys.executable}: pip install -e '.[test]'"
    return path


# --- deploy, redeploy, plan, check, rollback ---------------------------------------------


def test_deploy_redeploy_check_hand_edit_and_rollback(ws: Workspace) -> None:
    before = state(ws.url)
    files_before = ws.files()

    result = ws.deploy()
    assert result.revision is not None and result.path is not None
    match = REVISION_NAME.match(result.path.name)
    assert match, result.path.name
    assert match.group(1) == next_number() and result.revision == result.path.stem
    sha = result.plan.sha256
    assert match.group(2) == sha[:12]
    assert ws.files() == sorted([*files_before, result.path.name])

    after = state(ws.url)
    assert after["version"] == (result.revision,)  # it depends on the schema head
    # the base schema builds on the committed rules revisions; this deploy is the newest
    assert len(after["deployments"]) == len(BASE_RULES) + 1
    (revision, down, deployed_sha, functions, defs) = after["deployments"][-1]
    assert (revision, down, deployed_sha) == (result.revision, BASE_RULES[-1], sha)
    assert set(functions) == set(defs) and "customer.sync_contract_status(date)" in functions
    owners = {name: owner for name, _, _, owner in after["routines"]}
    for identity in functions:
        kind = "procedure" if identity.startswith("customer.run_post_etl_hooks(") else "function"
        # created by this revision, or by a rules revision the base schema builds on
        # (CREATE OR REPLACE keeps the object's first creator)
        creators = (result.revision, *BASE_RULES)
        assert {(kind, identity, creator) for creator in creators} & set(after["managed"])
        assert owners[identity.replace(", ", ",")] == "cmdm_owner"  # regprocedure text
    # the status columns the base schema lacked were added
    for table in SNAPSHOT_TABLES:
        assert {"is_new_arrival", "is_churned"} <= columns_of(ws.url, table)

    # The revision holds the SQL frozen and its payload hash matches.
    revision_file = read_revision_file(result.path)
    assert revision_file.payload_matches()
    assert revision_file.constants["RULES_SHA256"] == sha
    # downgrade restores the objects of the rules revision the base schema builds on
    previous = read_revision_file(ws.versions / f"{BASE_RULES[-1]}.py")
    assert revision_file.constants["PREVIOUS_OBJECTS"] == previous.constants["OBJECTS"]
    assert [o["identity"] for o in revision_file.objects] == list(functions)

    # Unchanged rules: nothing to deploy, no file written.
    again = ws.deploy()
    assert again.revision is None and again.plan.up_to_date
    assert ws.files() == sorted([*files_before, result.path.name])
    assert state(ws.url) == after

    plan = deploy.make_plan(ws.target())
    assert plan.up_to_date and plan.revision is None
    assert not plan.columns_to_add
    assert {o.change for o in plan.objects} == {"unchanged"}

    assert deploy.check(ws.target()).in_sync

    # Someone fixes a function by hand in the database: --check names it.
    hand_edit(ws.url, "customer.loaded_months(date, date)")
    checked = deploy.check(ws.target())
    assert not checked.in_sync
    assert len(checked.problems) == 1
    assert checked.problems[0].startswith("customer.loaded_months(date, date) was edited")

    # Rolling the deploy back restores the database as it was before it.
    ws.downgrade()
    assert state(ws.url) == before
    # the functions this deploy added are gone; those of the revision before it are back
    added = {row[0] for row in after["routines"]} - {row[0] for row in before["routines"]}
    assert added.isdisjoint(routine_names(ws.url))
    assert "customer.sync_contract_status(date)" in routine_names(ws.url)


def test_a_new_status_alone_deploys_its_column(ws: Workspace) -> None:
    """A status no template reads yet changes no SQL; its column is still due."""
    first = ws.deploy()
    rules = ws.rules_copy("rules_big")
    add_is_big(rules)
    assert not deploy.check(ws.target(rules)).in_sync
    second = ws.deploy(rules)
    assert second.revision is not None and second.revision.startswith(f"{next_number(2)}_rules_")
    assert second.columns_added == {table: ["is_big"] for table in SNAPSHOT_TABLES}
    for table in SNAPSHOT_TABLES:
        assert "is_big" in columns_of(ws.url, table)
    assert ws.deploy(rules).revision is None
    assert deploy.check(ws.target(rules)).in_sync
    ws.downgrade()
    assert rules_head(ws.url) == first.revision
    for table in SNAPSHOT_TABLES:
        assert "is_big" not in columns_of(ws.url, table)


def test_second_deploy_adds_a_status_column_and_downgrade_restores_the_first(
    ws: Workspace,
) -> None:
    first = ws.deploy()
    assert first.revision is not None
    deployed_first = state(ws.url)

    rules = ws.rules_copy("rules_big")
    add_is_big(rules)
    config = rules / "config.yml"
    config.write_text(config.read_text().replace("500000000", "700000000"))
    plan = deploy.make_plan(ws.target(rules))
    assert plan.columns_to_add == {table: ["is_big"] for table in SNAPSHOT_TABLES}
    assert plan.deployed_revision == first.revision
    # the threshold is read where the annual statuses are decided, checked and taken over
    # no facts; the new status is computed, written and checked with the snapshot
    assert [o.identity for o in plan.by_change("changed")] == [
        "customer.check_contract_history(date, date)",
        "customer.check_monthly_snapshot(date)",
        "customer.compute_annual_statuses(integer[])",
        "customer.compute_monthly_snapshot(date)",
        "customer.decide_annual_statuses(integer[])",
        "customer.refresh_monthly_snapshot(date)",
        "customer.sync_compute_states(date)",
    ]

    second = ws.deploy(rules)
    assert second.revision is not None and second.revision.startswith(f"{next_number(2)}_rules_")
    assert second.plan.sha256 != first.plan.sha256
    for table in SNAPSHOT_TABLES:
        assert "is_big" in columns_of(ws.url, table)
    revision_file = read_revision_file(second.path)
    assert revision_file.down_revision == first.revision
    assert revision_file.constants["PREVIOUS_RULES_REVISION"] == first.revision
    assert revision_file.constants["COLUMNS_ADDED"] == {t: ["is_big"] for t in SNAPSHOT_TABLES}
    first_objects = read_revision_file(first.path).objects
    assert revision_file.constants["PREVIOUS_OBJECTS"] == first_objects
    assert deploy.check(ws.target(rules)).in_sync
    # every routine now carries the second sha
    comments = {name: comment for name, _, comment, _ in state(ws.url)["routines"]}
    for obj in first_objects:
        assert second.plan.sha256 in comments[obj["identity"].replace(", ", ",")]

    ws.downgrade()
    assert state(ws.url) == deployed_first  # the first revision's SQL back, column gone
    # the database runs the first rules again: in sync with them, drift against the second
    ws.versions.joinpath(second.path.name).unlink()
    assert deploy.check(ws.target()).in_sync
    assert not deploy.check(ws.target(rules)).in_sync


def test_plan_shows_changed_functions_diff_and_columns_no_longer_in_rules(
    ws: Workspace,
) -> None:
    ws.deploy()
    rules = ws.rules_copy("rules_changed")
    config = rules / "config.yml"
    text = config.read_text()
    assert "500000000" in text
    config.write_text(text.replace("500000000", "700000000"))
    statuses = rules / "statuses.yml"
    text = statuses.read_text()
    start = text.index("  is_churned:\n")
    end = text.index("\n  is_", start + 1) + 1
    statuses.write_text(text[:start] + text[end:])

    plan = deploy.make_plan(ws.target(rules))
    changes = {o.identity: o.change for o in plan.objects}
    assert changes["customer.sync_compute_states(date)"] == "changed"
    assert changes["customer.sync_contract_status(date)"] == "unchanged"
    assert changes["customer.loaded_months(date, date)"] == "unchanged"
    # the threshold changes the sync's states step (the value of an annual status over no
    # facts); the status no longer defined changes the snapshot
    assert changes["customer.refresh_monthly_snapshot(date)"] == "changed"
    [changed] = [o for o in plan.by_change("changed") if "sync_compute" in o.identity]
    assert "+" in changed.diff and "700000000" in changed.diff
    assert changed.diff.startswith("--- deployed/sql/functions/customer.sync_compute_states")
    assert plan.columns_not_in_rules == {t: ["is_churned"] for t in SNAPSHOT_TABLES}
    assert plan.columns_to_add == {}
    assert plan.revision and plan.revision.startswith(f"{next_number(2)}_rules_")

    files = ws.files()
    shown = runner.invoke(
        app,
        [
            "deploy-rules",
            "--plan",
            "--diff",
            "--database-url",
            ws.url,
            "--rules-dir",
            str(rules),
            "--sql-dir",
            str(ws.sql),
            "--migrations-dir",
            str(ws.migrations),
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert "changed   customer.sync_compute_states(date)" in shown.stdout
    assert "is_churned" in shown.stdout and "never drops a column" in shown.stdout
    assert "+" in shown.stdout and "700000000" in shown.stdout
    as_json = ws.cli("--plan", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["up_to_date"] is True
    assert ws.files() == files  # a plan writes nothing

    # --check sees the drift between rules/ and the deployed revision
    drift = deploy.check(ws.target(rules))
    assert not drift.in_sync
    assert "see `cmdm deploy-rules --plan`" in drift.problems[0]


def test_a_changed_result_type_is_dropped_and_recreated(ws: Workspace) -> None:
    """CREATE OR REPLACE cannot change a result type (42P13): upgrade and downgrade drop the
    routine and create it again."""
    ws.deploy()
    sql = ws.sql_copy("sql_result_type")
    template = sql / "functions" / "customer.loaded_months.sql.j2"
    text = template.read_text()
    assert 'returns="SETOF date"' in text
    template.write_text(text.replace('returns="SETOF date"', 'returns="SETOF text"'))
    result_type = (
        "SELECT pg_get_function_result('customer.loaded_months(date, date)'::regprocedure)"
    )

    ws.deploy(sql=sql)
    assert query(ws.url, result_type) == [("SETOF text",)]
    assert deploy.check(ws.target(sql=sql)).in_sync
    ws.downgrade()
    assert query(ws.url, result_type) == [("SETOF date",)]
    assert ("function", "customer.loaded_months(date, date)") in {
        row[:2] for row in state(ws.url)["managed"]
    }


@pytest.mark.parametrize("on_top_of_a_deploy", [False, True])
def test_failed_deploy_leaves_database_and_versions_as_they_were(
    ws: Workspace, on_top_of_a_deploy: bool
) -> None:
    if on_top_of_a_deploy:
        ws.deploy()
    before, files = state(ws.url), ws.files()

    sql = ws.sql_copy("sql_broken")
    template = sql / "functions" / "customer.loaded_months.sql.j2"
    text = template.read_text()
    assert "\nBEGIN\n" in text
    template.write_text(text.replace("\nBEGIN\n", "\nBEGIN\n    SELEC 1;\n", 1))

    with pytest.raises(MigrationError) as failed:
        ws.deploy(sql=sql)
    message = str(failed.value)
    assert "sql/functions/customer.loaded_months.sql.j2" in message
    assert "customer.loaded_months(date, date)" in message
    assert "nothing was changed" in message and "\n" not in message
    assert state(ws.url) == before
    assert ws.files() == files
    assert not list(ws.versions.glob("__pycache__/*_rules_*"))

    cli = ws.cli("--sql-dir", str(sql))  # the later --sql-dir wins
    assert cli.exit_code == 1
    assert cli.output.count("Error:") == 1 and "customer.loaded_months" in cli.output
    assert state(ws.url) == before and ws.files() == files


# --- deploys while the ETL loads ------------------------------------------------------------

#: A load in progress: a fact row inserted, not committed. The transaction holds ROW
#: EXCLUSIVE on the facts table (and, through the statement trigger, on cmdm.hook_queue).
ETL_ROW = (
    'INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", '
    "\"期末资产规模\") VALUES ('2025-01-31', 'LOCK_P1', 'LOCK_C1', 'PL201', 1)"
)
ETL_APPLICATION = "etl-load"
#: How long a lock test lets the ETL transaction stay open at most: should a deploy wait
#: regardless of lock_timeout, the test then fails on its assertions instead of hanging.
ETL_GIVES_UP_AFTER = 20.0


@contextmanager
def etl_loading(url: str) -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(url, application_name=ETL_APPLICATION)
    conn.execute(ETL_ROW)
    release = threading.Timer(ETL_GIVES_UP_AFTER, conn.rollback)  # ends the load
    release.start()
    try:
        yield conn
    finally:
        release.cancel()
        conn.rollback()
        conn.close()


def triggers_on_inputs(url: str) -> list[tuple]:
    """Each trigger of the input tables with its definition and the transaction that last
    wrote its pg_trigger row: CREATE OR REPLACE TRIGGER changes the xmin, even when the
    definition stays the same; leaving the trigger alone does not."""
    return query(
        url,
        "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), xmin::text "
        "FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
        "('business.\"规模明细\"'::regclass, 'customer.\"当年中标\"'::regclass, "
        "'customer.\"当年流失\"'::regclass, 'mapping.\"产品线\"'::regclass) ORDER BY 1, 2",
    )


def test_a_deploy_that_keeps_the_triggers_does_not_wait_for_the_etl(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Today's rules on the base revision: functions and status columns change, the
    triggers do not. With a load open on the facts table, the deploy and its rollback both
    go through at once: they take no lock on the ETL's tables."""
    monkeypatch.setenv(migrate.LOCK_TIMEOUT_ENV, "1s")
    before = triggers_on_inputs(ws.url)
    assert len(before) >= 10
    with etl_loading(ws.url):
        started = time.monotonic()
        result = ws.deploy()
        deployed_in = time.monotonic() - started
        assert result.revision is not None
        assert triggers_on_inputs(ws.url) == before  # not even replaced
        ws.downgrade()
        assert triggers_on_inputs(ws.url) == before
    assert deployed_in < ETL_GIVES_UP_AFTER / 2


def test_a_deploy_behind_the_etl_gives_up_after_lock_timeout_and_changes_nothing(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed facts trigger (an extra trigger argument) must be replaced, which needs a
    SHARE ROW EXCLUSIVE lock on the facts table: behind an open load it waits lock_timeout,
    fails with one line naming the lock, the table and the load's session, and leaves the
    database and the versions folder as they were."""
    sql = ws.sql_copy("sql_trigger_argument")
    template = sql / "triggers" / "business.facts__queue_hooks.sql.j2"
    text = template.read_text()
    call = "EXECUTE FUNCTION cmdm.tg_facts__queue_hooks({{ hooks.domain }});"
    assert call in text
    template.write_text(text.replace(call, call.replace("}})", "}}, 'facts')")))
    before, files, triggers = state(ws.url), ws.files(), triggers_on_inputs(ws.url)
    monkeypatch.setenv(migrate.LOCK_TIMEOUT_ENV, "1s")

    with etl_loading(ws.url) as etl:
        started = time.monotonic()
        result = ws.cli("--sql-dir", str(sql))
        failed_in = time.monotonic() - started
        etl_pid = etl.info.backend_pid

    assert result.exit_code == 1, result.output
    assert result.output.count("Error:") == 1 and result.output.count("\n") == 1
    line = result.output
    assert line.startswith("Error: deploy of rules sha256 ")
    assert (
        "gave up after waiting 1s (lock_timeout) for a SHARE ROW EXCLUSIVE lock on "
        f"business.\"规模明细\", held by pid {etl_pid} (application_name '{ETL_APPLICATION}'"
    ) in line
    assert f"run it again when the transaction of pid {etl_pid} has ended" in line
    assert "raise lock_timeout (cmdm.toml, or $CMDM_LOCK_TIMEOUT)" in line
    assert failed_in < ETL_GIVES_UP_AFTER / 2, failed_in
    assert state(ws.url) == before
    assert triggers_on_inputs(ws.url) == triggers
    assert ws.files() == files

    # Once the load has ended, the same deploy goes through and replaces the trigger.
    again = ws.cli("--sql-dir", str(sql))
    assert again.exit_code == 0, again.output
    changed = {
        (table, name): definition for table, name, definition, _ in triggers_on_inputs(ws.url)
    }
    assert changed[('business."规模明细"', "_200_post_etl_hooks_insert")].endswith(
        "tg_facts__queue_hooks('annuity_performance', 'facts')"
    )


# --- refusals ------------------------------------------------------------------------------


def test_stray_revision_file_is_refused_and_named(ws: Workspace) -> None:
    ws.deploy()
    stray = ws.versions / "0005_side_branch.py"
    stray.write_text(
        '"""A schema change written on another branch."""\n\n'
        'revision = "0005_side_branch"\ndown_revision = "0002_contract_sync_support"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    files = ws.files()
    with pytest.raises(deploy.DeployRefused, match=r"stray revision file .*0005_side_branch\.py"):
        ws.target()
    for args in ((), ("--plan",), ("--check",)):
        result = ws.cli(*args)
        assert result.exit_code == 1, args
        assert result.output.count("\n") == 1 and result.output.startswith("Error: stray")
        assert "0005_side_branch.py" in result.output
    assert ws.files() == files


def test_hand_edited_revision_file_is_refused_and_named(ws: Workspace) -> None:
    result = ws.deploy()
    path = result.path
    text = path.read_text()
    assert "Copies renamed product line names" in text
    path.write_text(text.replace("Copies renamed product line names", "Copies renamed names", 1))

    with pytest.raises(deploy.DeployRefused) as refused:
        ws.target()
    assert f"{path.name} was edited by hand" in str(refused.value)
    for args in ((), ("--plan",), ("--check",)):
        cli = ws.cli(*args)
        assert cli.exit_code == 1
        assert cli.output.count("Error:") == 1 and "was edited by hand" in cli.output
    # The revision itself refuses to run edited SQL, in either direction.
    with pytest.raises(MigrationError, match="was edited by hand"):
        ws.downgrade()
    assert rules_head(ws.url) == result.revision


def test_pending_revisions_are_refused(tmp_path: Path, database_url: str) -> None:
    ws = Workspace(tmp_path, database_url)
    migrate.upgrade(database_url, "0002_contract_sync_support", ws.migrations)
    with pytest.raises(deploy.DeployRefused) as refused:
        ws.target()
    message = str(refused.value)
    assert f"{BASE_RULES[0]}.py, " in message and "are not applied" in message
    assert "cmdm migrate upgrade" in message
    cli = ws.cli()
    assert cli.exit_code == 1 and cli.output.count("Error:") == 1
    assert ws.files() == sorted(f"{r}.py" for r in BASE_RULES)


def test_a_schema_older_than_cmdm_is_refused(tmp_path: Path, database_url: str) -> None:
    ws = Workspace(tmp_path, database_url)
    for path in ws.versions.glob("*_rules_*.py"):
        path.unlink()  # a new project: no rules revision yet
    migrate.upgrade(database_url, "0008_annual_status", ws.migrations)
    with pytest.raises(deploy.DeployRefused, match=rf"older than this cmdm \({SCHEMA_HEAD}\)"):
        ws.target()
    assert ws.files() == []


def test_rules_that_do_not_fit_the_catalog_are_located(ws: Workspace) -> None:
    rules = ws.rules_copy("rules_bad_column")
    add_is_big(rules)
    statuses = rules / "statuses.yml"
    statuses.write_text(statuses.read_text().replace("value: 1000000", "value: 'big'"))
    result = ws.cli("--rules-dir", str(rules))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == "Error: 1 problem in the rules"
    assert "statuses.yml:" in lines[0]
    assert ws.files() == sorted(p.name for p in ws.versions.iterdir())
    assert rules_head(ws.url) == BASE_RULES[-1]


# --- the CLI ------------------------------------------------------------------------------


def test_cli_deploy_nothing_check_and_drift(ws: Workspace) -> None:
    first = ws.cli()
    assert first.exit_code == 0, first.output
    assert "deployed rules sha256" in first.stdout
    again = ws.cli()
    assert again.exit_code == 0 and again.stdout.startswith("nothing to deploy: rules sha256")
    checked = ws.cli("--check")
    assert checked.exit_code == 0 and checked.stdout.startswith("in sync")

    hand_edit(ws.url, "customer.contract_dependent_months(date)")
    execute(ws.url, "COMMENT ON FUNCTION customer.loaded_months(date, date) IS 'mine now'")
    drift = ws.cli("--check")
    assert drift.exit_code == 1
    assert "customer.contract_dependent_months(date) was edited in the database" in drift.output
    assert "customer.loaded_months(date, date): its COMMENT no longer carries" in drift.output
    assert drift.output.strip().splitlines()[-1] == "Error: drift: 2 problems"
    execute(ws.url, 'DROP TRIGGER _100_propagate_name ON mapping."产品线"')
    as_json = ws.cli("--check", "--json")
    assert as_json.exit_code == 1
    problems = json.loads(as_json.stdout)["problems"]
    assert len(problems) == 3
    assert (
        problems[-1]
        == 'trigger _100_propagate_name ON mapping."产品线" is missing from the database'
    )

    both = ws.cli("--plan", "--check")
    assert both.exit_code == 1 and both.output.startswith("Error: --plan and --check")


def test_cli_says_how_to_fill_a_new_status_column_in_stored_months(ws: Workspace) -> None:
    ws.deploy()
    with psycopg.connect(ws.url) as conn:
        load_demo(conn, DemoSpec(companies=10, months=2, seed=1))
    add_is_big(ws.rules)
    result = ws.cli()
    assert result.exit_code == 0, result.output
    assert (
        "note: is_big hold false in the snapshot months already stored (2024-01 to 2024-02); "
        "fill them with `cmdm rebuild --from 2024-01 --to 2024-02`"
    ) in result.stdout


def test_cli_check_on_a_database_without_rules(ws: Workspace) -> None:
    ws.downgrade("rules@base")  # no rules revision applied, and none on disk
    for path in ws.versions.glob("*_rules_*.py"):
        path.unlink()
    result = ws.cli("--check")
    assert result.exit_code == 1
    assert "no rules are deployed" in result.output


def test_migrations_dir_from_the_environment(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(migrate.MIGRATIONS_DIR_ENV, str(ws.migrations))
    result = runner.invoke(
        app,
        [
            "deploy-rules",
            "--database-url",
            ws.url,
            "--rules-dir",
            str(ws.rules),
            "--sql-dir",
            str(ws.sql),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["deployed"] is True
    assert Path(payload["revision_file"]).parent == ws.versions
    down = runner.invoke(app, ["migrate", "downgrade", "rules@-1", "--database-url", ws.url])
    assert down.exit_code == 0, down.output
    assert f"at {', '.join(BASE_HEADS)}" in down.output


# --- the revision file ---------------------------------------------------------------------


def test_revision_file_is_clean_python_and_checks_its_own_payload(ws: Workspace) -> None:
    rules = ws.rules_copy("rules_big")
    add_is_big(rules)
    path = ws.deploy(rules).path
    config = project_dir() / "pyproject.toml"
    for args in (["check"], ["format", "--check"]):
        run = subprocess.run(
            [str(ruff()), *args, "--config", str(config), str(path)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr

    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    assert namespace["payload_sha256"]() == namespace["PAYLOAD_SHA256"]
    parsed = read_revision_file(path)
    assert (
        computed_payload_sha256(parsed.revision, parsed.down_revision, parsed.constants)
        == (namespace["PAYLOAD_SHA256"])
    )
    # frozen: the module imports nothing that could read or render templates
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    # Nothing of cmdm_admin, which changes between releases: the file stays applicable.
    assert imported == {
        "__future__",
        "hashlib",
        "json",
        "re",
        "psycopg",
        "alembic",
        "alembic.util",
        "sqlalchemy",
    }


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_literals_read_back_exactly(value: Any) -> None:
    source = py_literal(value)
    assert ast.literal_eval(source) == value
    for line in source.split("\n"):
        assert line == line.rstrip(" \t"), "W291: trailing whitespace"


# --- the history of the versions folder (no database) -----------------------------------


def write_revision(folder: Path, revision: str, down: str | None) -> None:
    folder.joinpath(f"{revision}.py").write_text(
        f'"""{revision}."""\n\nrevision = {revision!r}\ndown_revision = {down!r}\n'
    )


def test_history_of_the_versions_folder(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    write_revision(versions, "0001_a", None)
    write_revision(versions, "0002_b", "0001_a")
    write_revision(versions, "0003_c", "0002_b")
    (versions / "notes.txt").write_text("not a revision")

    history = deploy.read_history(versions, ("0003_c",))
    assert history.applied == ("0003_c", "0002_b", "0001_a") and history.head == "0003_c"

    with pytest.raises(deploy.DeployRefused, match=r"0003_c\.py is not applied"):
        deploy.read_history(versions, ("0002_b",))
    with pytest.raises(deploy.DeployRefused, match=r"0001_a\.py, .*0002_b\.py, .*0003_c\.py are"):
        deploy.read_history(versions, ())
    with pytest.raises(deploy.DeployRefused, match="'0009_x', which has no file"):
        deploy.read_history(versions, ("0009_x",))

    write_revision(versions, "0004_fork", "0002_b")  # a branch beside 0003_c
    with pytest.raises(deploy.DeployRefused, match=r"stray revision file .*0004_fork\.py"):
        deploy.read_history(versions, ("0003_c",))
    with pytest.raises(deploy.DeployRefused, match=r"files .*0003_c\.py, .*0004_fork\.py"):
        deploy.read_history(versions, ("0002_b",))  # which one is pending is not clear
    (versions / "0004_fork.py").unlink()

    write_revision(versions, "0005_orphan", "0004_gone")
    with pytest.raises(deploy.DeployRefused, match=r"stray revision file .*0005_orphan\.py"):
        deploy.read_history(versions, ("0003_c",))
