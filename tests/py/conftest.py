"""Shared fixtures: a real PostgreSQL cluster and throwaway databases in it.

The cluster is the one named by $CMDM_TEST_ADMIN_URL (the test harness starts one per
PostgreSQL major and sets it), else an embedded cluster this session starts in
.cmdm/pytest/ and removes at the end, of the major $CMDM_PG_VERSION names (default 15);
the clusters tests start themselves (cluster_home) are of that major too.
Each test that needs a database gets its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dbutil import scratch_database

from cmdm_admin import migrate
from cmdm_admin.cluster import EmbeddedCluster
from cmdm_admin.project import project_dir

ADMIN_URL_ENV = "CMDM_TEST_ADMIN_URL"


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """URL of the maintenance database of the test cluster."""
    configured = os.environ.get(ADMIN_URL_ENV)
    if configured:
        yield configured
        return
    cluster = EmbeddedCluster(project_dir() / ".cmdm" / "pytest", fsync=False)
    cluster.start()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.destroy()


@pytest.fixture
def database_url(admin_url: str) -> Iterator[str]:
    """A new empty database for one test."""
    with scratch_database(admin_url) as url:
        yield url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A new database at the head revision."""
    migrate.upgrade(database_url)
    return database_url


@pytest.fixture
def cluster_home() -> Iterator[Path]:
    """A folder for one embedded cluster, inside the project so the postgres system user
    can reach it when the tests run as root (pytest's tmp_path lives under a 0700 folder)."""
    base = project_dir() / ".cmdm" / "pytest-homes"
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    home = base / uuid.uuid4().hex[:10]
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    try:
        yield home
    finally:
        EmbeddedCluster(home).destroy()
        for leftover in sorted(home.rglob("*"), reverse=True):
            leftover.unlink() if not leftover.is_dir() else leftover.rmdir()
        home.rmdir()


@pytest.fixture
def rules_url(migrated_url: str) -> str:
    """A new database at head, which includes the committed rules revision: the default
    rules' generated functions, registered, owned and granted like in production."""
    with psycopg.connect(migrated_url) as conn:
        present = conn.execute(
            "SELECT to_regprocedure('customer.sync_contract_status(date)') IS NOT NULL"
        ).fetchone()[0]
    assert present, "head has no rules revision: run `cmdm deploy-rules` and commit it"
    return migrated_url
