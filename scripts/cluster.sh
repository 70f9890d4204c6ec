#!/usr/bin/env bash
# `make cluster`: several instances of the service (three unless INSTANCES=N) and the Telnyx
# simulator on this machine, sharing one database on the local PostgreSQL, behind the round-robin
# balancer on http://127.0.0.1:8080/ (the URL the simulator sends every webhook to). The instances
# listen on 8081, 8082, …; logs go to .cluster/. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

INSTANCES=${INSTANCES:-3}
DATABASE_URL=${DIALAJOKE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dialajoke_cluster}
BIN="${CARGO_TARGET_DIR:-target}/release/dialajoke"
LOGS=.cluster

cargo build --release --bin dialajoke
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

"$BIN" simulate --bind 127.0.0.1:8090 --api-key sim-key --seed-file "$LOGS/seed" --public-key-file "$LOGS/public_key" \
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

backends=()
for n in $(seq "$INSTANCES"); do
    port=$((8080 + n))
    DIALAJOKE_BIND="127.0.0.1:$port" DIALAJOKE_INSTANCE_ID="node-$n" "$BIN" serve >"$LOGS/node-$n.log" 2>&1 &
    pids+=($!)
    backends+=(--backend "127.0.0.1:$port")
done
"$BIN" balance --bind 127.0.0.1:8080 "${backends[@]}" >"$LOGS/balancer.log" 2>&1 &
pids+=($!)

echo
echo "  $INSTANCES instances of Dial-A-Joke on ${DATABASE_URL%%\?*}, against a SIMULATED Telnyx."
echo "  Open http://127.0.0.1:8080/ (round-robin over 127.0.0.1:8081-$((8080 + INSTANCES))); logs in $LOGS/."
echo "  Ctrl-C stops them all."
echo
wait -n "${pids[@]}" || true
echo "a process of the cluster stopped; see $LOGS/" >&2
