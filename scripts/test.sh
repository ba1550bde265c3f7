#!/usr/bin/env bash
# The whole check, from zero: install what is missing, start a throwaway PostgreSQL 15
# cluster in .cmdm/test-cluster, run ruff, pytest and pg_prove, and remove the cluster
# again, also when a check fails. Exit code 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh --browser
export PATH="$PWD/.venv/bin:$PATH"
export CMDM_HOME="$PWD/.cmdm/test-cluster"
unset CMDM_DATABASE_URL

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

cmdm db destroy --yes >/dev/null 2>&1 || true   # a cluster left by an interrupted run
cleanup() { cmdm db destroy --yes >/dev/null 2>&1 || true; }
trap cleanup EXIT
say "starting a throwaway PostgreSQL 15 cluster"
cmdm db start --no-fsync

failed=()

say "ruff"
{ ruff check . && ruff format --check .; } || failed+=(ruff)

say "pytest"
CMDM_TEST_ADMIN_URL=$(cmdm db url --database postgres) pytest tests/py "$@" || failed+=(pytest)

say "pgTAP (pg_prove)"
eval "$(cmdm db env --database postgres)"
PGOPTIONS='-c client_min_messages=warning' psql -qX -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS cmdm_pgtap' -c 'CREATE DATABASE cmdm_pgtap'
cmdm migrate upgrade --database-url "$(cmdm db url --database cmdm_pgtap)"
psql -qX -v ON_ERROR_STOP=1 -d cmdm_pgtap -c 'CREATE EXTENSION pgtap'
pg_prove --dbname cmdm_pgtap --failures cmdm_admin/pgtap/*.sql || failed+=(pgtap)

if ((${#failed[@]})); then
    printf '\n\033[31mFAILED:\033[0m %s\n' "${failed[*]}"
    exit 1
fi
printf '\n\033[32mall checks passed\033[0m\n'
