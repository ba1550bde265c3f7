#!/usr/bin/env bash
# The main job, from zero: install what is missing, start the embedded PostgreSQL 15
# cluster in .cmdm/, migrate it, load demo data month by month (one COPY transaction per
# month, as an ETL does; each COMMIT runs the post-ETL hook) and print what the outputs
# hold. Safe to run again: a month loaded before is replaced.
# Scale: DEMO_COMPANIES, DEMO_MONTHS, DEMO_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "embedded PostgreSQL 15"
cmdm db start
say "migrations"
cmdm migrate upgrade
say "loading demo data"
cmdm demo load --companies "${DEMO_COMPANIES:-2000}" --months "${DEMO_MONTHS:-24}" \
    --seed "${DEMO_SEED:-7}"
say "what the outputs hold"
cmdm summary
cat <<'NEXT'
  source .venv/bin/activate                        to run cmdm yourself (cmdm --help)
  psql "$(cmdm db url)"                            query the tables yourself
  cmdm overview                                    the inputs per month
  make db-stop                                     stop the cluster (data stays in .cmdm/)
NEXT
