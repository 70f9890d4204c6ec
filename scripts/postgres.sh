#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 to the user postgres without a password, which is
# what the PostgreSQL tests and `make cluster` use: starts the local server when it is stopped and,
# on Debian or Ubuntu, installs it first when it is missing (`make postgres` runs this).
set -euo pipefail

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

answers() {
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null
}

wait_until_it_answers() {
    for _ in $(seq 50); do
        answers && return 0
        sleep 0.2
    done
    echo "PostgreSQL did not answer on 127.0.0.1:5432" >&2
    return 1
}

answers && exit 0

installed_now=false
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    installed_now=true
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)

if [ "$installed_now" = true ]; then
    # A fresh server wants a password over TCP; this one only serves tests on this machine, so
    # the postgres user may connect from 127.0.0.1 without one.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
fi

$SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
wait_until_it_answers
