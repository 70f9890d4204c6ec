#!/usr/bin/env bash
# `make cluster`: several instances of the service (three unless INSTANCES=N) and the Telnyx
# simulator on this machine, sharing one database on the local PostgreSQL, behind HAProxy on
# http://127.0.0.1:8080/ (the URL the simulator sends every webhook to), run with docs/haproxy.cfg
# plus one `server` line per instance. The instances listen on 8081, 8082, …; HAProxy's stats are
# on http://127.0.0.1:8089/stats; logs go to .cluster/. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

INSTANCES=${INSTANCES:-3}
DATABASE_URL=${DIALAJOKE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dialajoke_cluster}
BIN="${CARGO_TARGET_DIR:-target}/release/dialajoke"
SIM="${CARGO_TARGET_DIR:-target}/release/telnyx-sim"
LOGS=.cluster
HAPROXY=/usr/sbin/haproxy

if [ ! -x "$HAPROXY" ]; then
    echo "$HAPROXY is missing: install HAProxy with 'make balancer-deps' (the Debian package haproxy)" >&2
    exit 1
fi

cargo build --release -p dialajoke -p telnyx-sim
scripts/postgres.sh
mkdir -p "$LOGS"
rm -f "$LOGS/public_key"

pids=()
stop_all() {
    trap - INT TERM EXIT
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

"$SIM" --bind 127.0.0.1:8090 --api-key sim-key --seed-file "$LOGS/seed" --public-key-file "$LOGS/public_key" \
    --webhook-url http://127.0.0.1:8080/webhook >"$LOGS/simulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ -s "$LOGS/public_key" ] && break
    sleep 0.1
done

export DIALAJOKE_DATABASE_URL="$DATABASE_URL"
export DIALAJOKE_PUBLIC_URL=http://127.0.0.1:8080
export DIALAJOKE_ALLOWED_COUNTRIES=US,IE
export TELNYX_API_BASE=http://127.0.0.1:8090/v2
export TELNYX_API_KEY=sim-key
export TELNYX_PUBLIC_KEY="$(cat "$LOGS/public_key")"
export TELNYX_CONNECTION_ID=cluster-connection
export TELNYX_FROM_NUMBER="+1 202 555 0100"

# Create or upgrade the schema once, before the instances start.
"$BIN" migrate

cp docs/haproxy.cfg "$LOGS/haproxy.cfg"
for n in $(seq "$INSTANCES"); do
    port=$((8080 + n))
    DIALAJOKE_BIND="127.0.0.1:$port" DIALAJOKE_INSTANCE_ID="node-$n" "$BIN" serve >"$LOGS/node-$n.log" 2>&1 &
    pids+=($!)
    echo "    server node-$n 127.0.0.1:$port" >>"$LOGS/haproxy.cfg"
done
DIALAJOKE_BALANCER_BIND=127.0.0.1:8080 DIALAJOKE_BALANCER_STATS=127.0.0.1:8089 \
    "$HAPROXY" -db -f "$LOGS/haproxy.cfg" >"$LOGS/haproxy.log" 2>&1 &
pids+=($!)

echo
echo "  $INSTANCES instances of Dial-A-Joke on ${DATABASE_URL%%\?*}, against a SIMULATED Telnyx."
echo "  Open http://127.0.0.1:8080/ (HAProxy, round-robin over 127.0.0.1:8081-$((8080 + INSTANCES)));"
echo "  its stats are on http://127.0.0.1:8089/stats; logs in $LOGS/."
echo "  Ctrl-C stops them all."
echo
wait -n "${pids[@]}" || true
echo "a process of the cluster stopped; see $LOGS/" >&2
