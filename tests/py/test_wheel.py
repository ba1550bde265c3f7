"""cmdm as a deploy pipeline installs it: a wheel, in a fresh venv outside the source tree,
pointed at a new rules project and a scratch database. The project is made by `cmdm init`,
deployed, then a month is loaded through the ETL path (the trigger runs the hooks at
COMMIT) and the outputs are read back. Nothing of the checkout may be on the way: the venv
has no editable install, the working directory is the new project, and the frozen rules
revision the deploy writes must import nothing of cmdm_admin."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from dbutil import query

from cmdm_admin.project import PACKAGE_DIR

SOURCE = PACKAGE_DIR.parent
#: What a wheel is built from: the package and the files the build reads.
BUILD_INPUTS = ("cmdm_admin", "rules", "pyproject.toml", "README.md")
#: Files the tool needs at run time besides its code: each must be in the wheel.
SHIPPED = (
    "cmdm_admin/sql/*/*",
    "cmdm_admin/migrations/env.py",
    "cmdm_admin/migrations/script.py.mako",
    "cmdm_admin/migrations/versions/*.py",
    "cmdm_admin/pgtap/*.sql",
    "cmdm_admin/templates/*.j2",
    "rules/*.yml",
)


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the wheel built from a copy of the sources."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = SOURCE / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(path, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    env = clean_env()
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), "."],
        source,
        env,
    )
    wheels = list((root / "dist").glob("cmdm_admin-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        shipped = set(wheel.namelist())
    for pattern in SHIPPED:
        expected = {
            str(p.relative_to(SOURCE)).replace("rules/", "cmdm_admin/default_rules/", 1)
            for p in SOURCE.glob(pattern)
        }
        assert expected and expected <= shipped, (pattern, sorted(expected - shipped))
    run([sys.executable, "-m", "venv", str(root / "venv")], root, env)
    bin_dir = root / "venv" / "bin"
    run([str(bin_dir / "pip"), "install", "-q", str(wheels[0])], root, env)
    return bin_dir


def clean_env() -> dict[str, str]:
    """The environment without anything pointing at this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMDM_", "PYTHON", "VIRTUAL"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(SOURCE))
    )
    return env


def test_wheel_init_deploy_and_a_month_through_the_etl_path(
    installed: Path, tmp_path: Path, database_url: str
) -> None:
    env = clean_env()
    cmdm = str(installed / "cmdm")
    where = run(
        [str(installed / "python"), "-c", "import cmdm_admin; print(cmdm_admin.__file__)"],
        tmp_path,
        env,
    )
    assert where.startswith(str(installed.parent)), where  # the wheel, not the checkout

    run([cmdm, "init", "annuity"], tmp_path, env)
    project = tmp_path / "annuity"
    url = ["--database-url", database_url]
    run([cmdm, "migrate", "upgrade", *url], project, env)
    deployed = json.loads(run([cmdm, "deploy-rules", *url, "--json"], project, env))
    assert deployed["deployed"] is True
    revision = Path(deployed["revision_file"])
    assert revision.parent == project / "migrations" / "versions"
    assert revision.name.startswith("0001_rules_")
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(revision.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m and m.startswith("cmdm_admin")}, imported

    # The ETL path: COPY into business."规模明细", hooks at COMMIT.
    run([cmdm, "demo", "load", "--companies", "30", "--months", "1", *url], project, env)
    [(contracts, snapshot)] = query(
        database_url,
        "SELECT (SELECT count(*) FROM customer.customer_plan_contract), "
        "(SELECT count(*) FROM customer.fct_customer_business_monthly_status)",
    )
    assert contracts > 0 and snapshot > 0
    runs = query(database_url, "SELECT trigger_kind, outcome FROM cmdm.hook_run")
    assert runs and set(runs) == {("trigger", "succeeded")}, runs
    checked = run([cmdm, "check", *url], project, env)
    assert "no differences" in checked
    current = json.loads(run([cmdm, "migrate", "current", "--json", *url], project, env))
    assert current["pending"] == []
