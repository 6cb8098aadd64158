#!/usr/bin/env bash
# The project's test command:  bash tests/run.sh [pytest arguments...]
#
# Installs what the tests need on a Debian machine (Dovecot, libmagic), starts
# the local PostgreSQL cluster if there is one, keeps .venv in step with
# pyproject.toml, then runs pytest and exits with its exit code.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'tests/run.sh: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi

# --- Debian packages --------------------------------------------------------
# grep without -q: with pipefail, -q can SIGPIPE the writer and fail the pipeline.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep 'install ok installed' >/dev/null; }

missing=()
installed dovecot-imapd || missing+=(dovecot-imapd)
# Documents saved by LibreOffice are part of the judging corpus (soffice --convert-to).
command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-writer-nogui)
# The documents list's .xlsx export is opened in LibreOffice Calc (tests/desk).
installed libreoffice-calc-nogui || missing+=(libreoffice-calc-nogui)
# The dashboard's browser tests drive Debian's chromium through Playwright (tests/desk).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# By library, not package name: trixie renamed libmagic1 to libmagic1t64.
ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
"$ldconfig" -p | grep 'libmagic\.so\.1 ' >/dev/null || missing+=(libmagic1)
if [ ! -x .venv/bin/python ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
        say "missing Debian packages: ${missing[*]}; install them as root (no sudo here)"
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    # Forbid service starts while installing, so dovecot-imapd does not leave a
    # system Dovecot on port 143. An existing policy that allows starts is set
    # aside and put back afterwards.
    policy=/usr/sbin/policy-rc.d
    backup=""
    if [ -e "$policy" ]; then
        policy_rc=0
        "$policy" dovecot start >/dev/null 2>&1 || policy_rc=$?
        if [ "$policy_rc" -ne 101 ]; then
            backup="$policy.intake-run-sh"
            $SUDO mv "$policy" "$backup"
        fi
    fi
    added_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        added_policy="yes"
    fi
    restore_policy() {
        if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi
        if [ -n "$backup" ]; then $SUDO mv "$backup" "$policy"; fi
    }
    trap restore_policy EXIT

    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

    restore_policy
    trap - EXIT
fi

# --- PostgreSQL on 127.0.0.1:5432 ---------------------------------------------
pg_up() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }

if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        for version in $(ls /etc/postgresql); do
            say "starting PostgreSQL $version/main"
            $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
        for _ in $(seq 50); do pg_up && break; sleep 0.2; done
    fi
    pg_up || say "PostgreSQL is not answering on 127.0.0.1:5432; its tests will skip or fail"
fi

# --- virtualenv -------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
fi

stamp=.venv/.intake-pyproject.sha256
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    say "installing the project into .venv (pyproject.toml changed)"
    .venv/bin/python -m pip install -qq --disable-pip-version-check -e '.[test,dev]'
    printf '%s\n' "$wanted" >"$stamp"
fi

# --- tests ------------------------------------------------------------------------
say "running pytest $*"
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    say "pytest collected no tests: treating that as a failure"
    exit 1
fi
exit "$status"
