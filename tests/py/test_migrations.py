"""Base migrations against real databases: up → down → up on an empty database and on one
whose ETL-owned input tables already exist with data (which must survive untouched), and
the data-contract check that guards pre-existing input tables."""

from __future__ import annotations

import json

import psycopg
import pytest
from dbutil import execute, query
from typer.testing import CliRunner

from cmdm_admin import migrate
from cmdm_admin.cli import app
from cmdm_admin.errors import InputContractError

runner = CliRunner()

OUTPUT_TABLES = {
    ("customer", "customer_plan_contract"),
    ("customer", "fct_customer_business_monthly_status"),
    ("customer", "fct_customer_plan_monthly_status"),
}
INPUT_TABLES = {
    ("mapping", "产品线"),
    ("customer", "年金客户"),
    ("business", "规模明细"),
    ("customer", "当年中标"),
    ("customer", "当年流失"),
}

# What an ETL might already have: the contract's columns with its own (compatible) types,
# extra columns of its own, and data.
ETL_SCHEMA = """
CREATE SCHEMA mapping; CREATE SCHEMA business; CREATE SCHEMA customer;
CREATE TABLE mapping."产品线" ("产品线代码" text PRIMARY KEY, "产品线" text, "备注" text);
CREATE TABLE customer."年金客户" (company_id varchar(32) PRIMARY KEY, "客户名称" text);
CREATE TABLE business."规模明细" (
    "月度" date, "业务类型" text, "计划代码" text, company_id text, "产品线代码" text,
    "组合代码" text, "期末资产规模" numeric(18, 4), "期初资产规模" double precision,
    "供款" bigint, "机构代码" text, "机构名称" text, "集团企业客户号" text);
CREATE TABLE customer."当年中标" (company_id text, "产品线代码" text, "计划代码" text,
    "上报月份" date, "备注" text);
CREATE TABLE customer."当年流失" (company_id text, "产品线代码" text, "计划代码" text,
    "上报月份" date);
INSERT INTO mapping."产品线" VALUES ('X01', '自定义产品线', 'etl');
INSERT INTO customer."年金客户" VALUES ('C1', '客户一'), ('C2', '客户二');
INSERT INTO business."规模明细"
SELECT make_date(2025, m, 1), '企年', 'P' || c, 'C' || c, 'X01', 'F' || c,
       1000.1234 * m * c, 1.5, 10, 'B1', '北京'
  FROM generate_series(1, 12) AS m, generate_series(1, 2) AS c;
INSERT INTO customer."当年中标" VALUES ('C1', 'X01', 'P1', '2025-03-01', 'won');
INSERT INTO customer."当年流失" VALUES ('C2', 'X01', 'P2', '2025-09-01');
"""


def tables(url: str) -> set[tuple[str, str]]:
    return set(
        query(
            url,
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname IN ('mapping', 'business', 'customer', 'cmdm')",
        )
    )


def fingerprint(url: str) -> dict[str, str]:
    """md5 of every input table's rows in a stable order: equal means untouched."""
    result = {}
    for schema, table in sorted(INPUT_TABLES):
        [(digest,)] = query(
            url,
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f'FROM {schema}."{table}" t',
        )
        result[f"{schema}.{table}"] = digest
    return result


def test_up_down_up_on_an_empty_database(database_url: str) -> None:
    migrate.upgrade(database_url)
    created = tables(database_url)
    assert created >= OUTPUT_TABLES | INPUT_TABLES
    assert migrate.pending_revisions(database_url) == []
    assert query(database_url, 'SELECT count(*) FROM mapping."产品线"') == [(5,)]

    migrate.downgrade(database_url, "base")
    assert tables(database_url) == set()
    assert (
        query(
            database_url,
            "SELECT nspname FROM pg_namespace WHERE nspname IN "
            "('mapping', 'business', 'customer', 'cmdm')",
        )
        == []
    )
    assert (
        query(database_url, "SELECT extname FROM pg_extension WHERE extname = 'btree_gist'") == []
    )
    assert migrate.current_heads(database_url) == ()

    migrate.upgrade(database_url)
    assert tables(database_url) == created


def test_up_down_up_leaves_etl_tables_and_data_untouched(database_url: str) -> None:
    execute(database_url, ETL_SCHEMA)
    before = fingerprint(database_url)

    migrate.upgrade(database_url)
    assert tables(database_url) >= OUTPUT_TABLES
    assert fingerprint(database_url) == before
    # Not ours, so not registered, not re-owned and not seeded.
    registered = {
        identity
        for (identity,) in query(
            database_url,
            "SELECT object_identity FROM cmdm.managed_object WHERE object_type = 'table'",
        )
    }
    assert not {f'{s}."{t}"' for s, t in INPUT_TABLES} & registered
    assert query(database_url, "SELECT tableowner FROM pg_tables WHERE tablename = '规模明细'") == [
        ("postgres",)
    ]
    assert query(database_url, 'SELECT "产品线代码" FROM mapping."产品线"') == [("X01",)]

    migrate.downgrade(database_url, "base")
    assert tables(database_url) == INPUT_TABLES
    assert fingerprint(database_url) == before
    assert query(database_url, 'SELECT "备注" FROM customer."当年中标"') == [("won",)]

    migrate.upgrade(database_url)
    assert fingerprint(database_url) == before
    assert tables(database_url) >= OUTPUT_TABLES


def test_outputs_reference_the_etl_tables(database_url: str) -> None:
    execute(database_url, ETL_SCHEMA)
    migrate.upgrade(database_url)
    [(referenced,)] = query(
        database_url,
        "SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = 'fk_contract_company'",
    )
    assert referenced == 'customer."年金客户"'


def test_missing_and_mistyped_columns_are_named(database_url: str) -> None:
    execute(database_url, ETL_SCHEMA)
    execute(
        database_url,
        'ALTER TABLE business."规模明细" DROP COLUMN "期末资产规模";'
        'ALTER TABLE customer."当年中标" ALTER COLUMN "上报月份" TYPE text',
    )
    with pytest.raises(InputContractError) as caught:
        migrate.upgrade(database_url)
    message = str(caught.value)
    assert 'business."规模明细"."期末资产规模" is missing (expected numeric' in message
    assert 'customer."当年中标"."上报月份" has type text, expected date (date)' in message
    # Nothing was created: the check runs before any DDL, in the same transaction.
    assert ("cmdm", "managed_object") not in tables(database_url)
    assert migrate.current_heads(database_url) == ()


def test_contract_failure_through_the_cli_is_one_line(database_url: str) -> None:
    execute(database_url, ETL_SCHEMA)
    execute(database_url, 'ALTER TABLE business."规模明细" ALTER COLUMN "月度" TYPE text')
    result = runner.invoke(app, ["migrate", "upgrade", "--database-url", database_url])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith(
        'Error: input tables do not match the data contract: business."规模明细"."月度" '
        "has type text, expected date (date)"
    )


def test_referenced_key_without_unique_constraint_is_named(database_url: str) -> None:
    execute(database_url, ETL_SCHEMA)
    execute(database_url, 'ALTER TABLE customer."年金客户" DROP CONSTRAINT "年金客户_pkey"')
    with pytest.raises(InputContractError, match=r'"年金客户"\."company_id" has no primary key'):
        migrate.upgrade(database_url)


def test_failed_upgrade_changes_nothing(database_url: str) -> None:
    """A statement failing midway (here: the product-line table lacks a PK, so the FK to it
    cannot be made) rolls the whole upgrade back."""
    execute(
        database_url,
        'CREATE SCHEMA mapping; CREATE TABLE mapping."产品线" ("产品线代码" text, "产品线" text)',
    )
    result = runner.invoke(app, ["migrate", "upgrade", "--database-url", database_url])
    assert result.exit_code == 1
    assert tables(database_url) == {("mapping", "产品线")}
    assert migrate.current_heads(database_url) == ()


def test_cli_up_down_and_current(database_url: str) -> None:
    up = runner.invoke(app, ["migrate", "upgrade", "--database-url", database_url])
    assert up.exit_code == 0, up.output
    heads = migrate.current_heads(database_url)
    assert f"at {', '.join(heads)}" in up.output
    current = runner.invoke(app, ["migrate", "current", "--json", "--database-url", database_url])
    assert json.loads(current.output) == {
        "current": list(heads),
        "heads": sorted(migrate.head_revisions()),
        "pending": [],
    }
    down = runner.invoke(app, ["migrate", "downgrade", "base", "--database-url", database_url])
    assert down.exit_code == 0 and "at base" in down.output


def test_unknown_revision_is_one_line(database_url: str) -> None:
    result = runner.invoke(app, ["migrate", "upgrade", "nope", "--database-url", database_url])
    assert result.exit_code == 1
    assert result.output.startswith("Error: upgrade to nope failed")
    assert "Traceback" not in result.output


def test_plain_alembic_uses_the_same_resolution(database_url: str) -> None:
    """Operators may run Alembic itself; -x database_url=… (or $CMDM_DATABASE_URL) works."""
    import subprocess
    import sys
    from pathlib import Path

    from cmdm_admin.project import project_dir

    alembic = Path(sys.executable).parent / "alembic"
    run = subprocess.run(
        [str(alembic), "-x", f"database_url={database_url}", "upgrade", "heads"],
        cwd=project_dir(),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert migrate.pending_revisions(database_url) == []
    assert tables(database_url) >= OUTPUT_TABLES


# --- lock_timeout: what a migration waited for ---------------------------------------------


@pytest.mark.parametrize(
    ("held", "named"),
    [
        (
            "LOCK TABLE cmdm.managed_object IN ACCESS EXCLUSIVE MODE",
            "for an ACCESS SHARE lock on cmdm.managed_object, held by pid {pid} "
            "(application_name 'etl-load'",
        ),
        (
            "SELECT pg_advisory_xact_lock(hashtext('cmdm:migrate'))",
            "for the advisory lock of another cmdm migration or deploy (they run one at a "
            "time), held by pid {pid} (application_name 'etl-load'",
        ),
    ],
    ids=["table", "another-migration"],
)
def test_a_migration_behind_a_lock_names_it_and_changes_nothing(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, held: str, named: str
) -> None:
    """Even an upgrade with nothing to do reads cmdm.managed_object (the grants script) and
    takes the migration lock: held elsewhere, it waits lock_timeout, then says what for."""
    monkeypatch.setenv(migrate.LOCK_TIMEOUT_ENV, "500ms")
    before = query(migrated_url, "SELECT * FROM cmdm.managed_object ORDER BY 1")
    with psycopg.connect(migrated_url, application_name="etl-load") as holder:
        holder.execute(held)
        result = runner.invoke(app, ["migrate", "upgrade", "--database-url", migrated_url])
        pid = holder.info.backend_pid
        holder.rollback()
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(
        "Error: upgrade to heads failed, nothing was changed: gave up after waiting 500ms "
        "(lock_timeout) "
    )
    assert named.format(pid=pid) in lines[0]
    assert lines[0].endswith("or raise lock_timeout (cmdm.toml, or $CMDM_LOCK_TIMEOUT)")
    assert query(migrated_url, "SELECT * FROM cmdm.managed_object ORDER BY 1") == before
    # and once the other transaction has ended, the same upgrade goes through
    again = runner.invoke(app, ["migrate", "upgrade", "--database-url", migrated_url])
    assert again.exit_code == 0, again.output
