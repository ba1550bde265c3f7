#!/usr/bin/env bash
# Install what cmdm needs on a fresh Debian 12 machine, idempotently:
#   - Debian packages: PostgreSQL 15 server, pgTAP, pg_prove, plpgsql_check, python3-venv
#   - .venv with cmdm (editable) and its test tools
# Works as root (apt-get directly) and as a normal user (sudo -n, else says what to run).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    postgresql-15
    postgresql-15-pgtap
    libtap-parser-sourcehandler-pgtap-perl
    postgresql-15-plpgsql-check
)
PYTHON=${PYTHON:-python3}

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

if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        apt=(apt-get)
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        apt=(sudo apt-get)
    else
        die "missing Debian packages: ${missing[*]}; install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
    say "installing ${missing[*]}"
    "${apt[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${missing[@]}" >/dev/null
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
