#!/usr/bin/env bash
# Webhook delivery latency, event to first attempt, on both backends:
# shop-local (the fast build) on the embedded store, then on DynamoDB Local
# + Redis, one subscription to every event type, CHANGES price updates one
# after another; a receiver on loopback (local-stack/checks/
# webhook_receiver.py, verifying each signature with `standardwebhooks`)
# notes when each first attempt arrived. Latency = arrival - the event's
# occurredAt (taken by the handler just before its store write), so it
# includes the write, the change feed, the fan-out and the signed POST.
# Every process runs on loopback and is stopped by PID.
# Usage: load/webhook-latency.sh [changes]   (default 500)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
CHANGES=${1:-500}
VENV="$REPO_DIR/.venv"
if ! "$VENV/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir standardwebhooks
fi
source load/both-backends.sh

measure() {
    local name=$1
    shift
    local dir="$WORK/$name"
    mkdir -p "$dir"
    "$VENV/bin/python" local-stack/checks/webhook_receiver.py >"$dir/receiver.out" &
    local receiver=$!
    PIDS+=("$receiver")
    for _ in $(seq 1 50); do grep -q listening "$dir/receiver.out" 2>/dev/null && break; sleep 0.1; done
    local hooks
    hooks="http://127.0.0.1:$(awk '{print $2}' "$dir/receiver.out")"
    local port pid
    port=$(free_port)
    pid=$(start_load_server "$port" "$dir" WEBHOOK_ALLOW_INSECURE_URLS=true "$@")
    PIDS+=("$pid")
    local base="http://127.0.0.1:$port"
    local token secret id
    token=$(curl -sf "$base/api/auth/register" -H 'content-type: application/json' \
        -d '{"email":"load-admin@example.com","password":"correct horse battery","name":"Hooks"}' | json_field token)
    secret=$(curl -sf "$base/api/webhooks" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"url\":\"$hooks/ok/latency\",\"events\":[\"product.updated\"]}" | json_field secret)
    curl -sf "$hooks/_secrets" -d "{\"path\":\"/ok/latency\",\"secrets\":[\"$secret\"]}"
    curl -sf "$base/api/categories" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"Hooks","description":"x"}' >/dev/null
    id=$(curl -sf "$base/api/products" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"Hooks","description":"x","price":10,"category":"Hooks","stock":100}' | json_field id)
    for i in $(seq 1 "$CHANGES"); do
        curl -sf -X PUT "$base/api/products/$id" -H "authorization: Bearer $token" \
            -H 'content-type: application/json' -d "{\"price\": $((11 + i % 2))}" >/dev/null
    done
    for _ in $(seq 1 100); do
        [ "$(curl -sf "$hooks/_received" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge "$CHANGES" ] && break
        sleep 0.2
    done
    echo "== $name: $CHANGES price changes, one subscription"
    curl -sf "$hooks/_received" | python3 -c '
import json, sys, calendar, time
def unix(text):
    whole, _, fraction = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (fraction or "0"))
received = json.load(sys.stdin)
assert all(r["verified"] == [0] for r in received), "a delivery failed verification"
lat = sorted((r["at"] - unix(r["body"]["occurredAt"])) * 1000 for r in received if r["attempt"] == 1)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"  {len(lat)} first attempts, all verified: p50 {q(0.5):.1f} ms, p90 {q(0.9):.1f} ms, p99 {q(0.99):.1f} ms, max {lat[-1]:.1f} ms")'
    stop_pid "$pid"
    stop_pid "$receiver"
}

measure_on_both_backends hooks
