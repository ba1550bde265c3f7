#!/usr/bin/env bash
# Install what cmdm needs on a fresh Debian 12 machine, idempotently:
#   - Debian packages: PostgreSQL 15 server, pgTAP, pg_prove, plpgsql_check, python3-venv
#   - .venv with cmdm (editable) and its test tools
# Works as root (apt-get directly) and as a normal user (sudo -n, else says what to run).
#   --browser  also, best effort, headless Chromium and a CJK font for the report's browser
#              test (scripts/test.sh); without them that one test is skipped, nothing fails
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    postgresql-15
    postgresql-15-pgtap
    libtap-parser-sourcehandler-pgtap-perl
    postgresql-15-plpgsql-check
)
BROWSER_PACKAGES=(chromium fonts-wqy-microhei)
PYTHON=${PYTHON:-python3}
with_browser=false
[[ ${1:-} == --browser ]] && with_browser=true

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31mError:\033[0m %s\n' "$*" >&2; exit 1; }

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
