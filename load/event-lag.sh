#!/usr/bin/env bash
# The change feed's delivery lag, change to consumer, on both backends:
# shop-local (the fast build) on the embedded store, then on DynamoDB Local
# + Redis; CHANGES price updates and orders, one after another, then the
# lag quantiles of each consumer from its /metrics (the latest 10000).
# The lag runs from the change's own timestamp (taken by the handler just
# before its store write) to the consumer's success, so it includes the
# write. Every server runs on a free loopback port and is stopped by PID.
# Usage: load/event-lag.sh [changes]   (default 500)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
CHANGES=${1:-500}
source load/both-backends.sh

measure() {
    local name=$1
    shift
    local port dir
    port=$(free_port)
    dir="$WORK/$name"
    mkdir -p "$dir"
    local pid
    pid=$(start_load_server "$port" "$dir" "$@")
    PIDS+=("$pid")
    local base="http://127.0.0.1:$port"
    local token
    token=$(curl -sf "$base/api/auth/register" -H 'content-type: application/json' \
        -d '{"email":"load-admin@example.com","password":"correct horse battery","name":"Lag"}' | json_field token)
    curl -sf "$base/api/categories" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"Lag","description":"x"}' >/dev/null
    local id
    id=$(curl -sf "$base/api/products" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"Lag","description":"x","price":10,"category":"Lag","stock":1000000}' | json_field id)
    for i in $(seq 1 "$CHANGES"); do
        if (( i % 2 )); then
            curl -sf -X PUT "$base/api/products/$id" -H "authorization: Bearer $token" \
                -H 'content-type: application/json' -d "{\"price\": $((10 + i % 7))}" >/dev/null
        else
            curl -sf "$base/api/orders" -H "authorization: Bearer $token" -H 'content-type: application/json' \
                -d "{\"items\":[{\"productId\":\"$id\",\"quantity\":1}]}" >/dev/null
        fi
    done
    # Settled: every change read (3 set-up events, 1 per price change, 2
    # per order) and every consumer delivered what was published.
    for _ in $(seq 1 100); do
        local metrics published
        metrics=$(curl -sf "$base/metrics")
        published=$(grep '^shop_events_published_total ' <<<"$metrics" | awk '{print $2}')
        if (( published >= 3 + CHANGES + CHANGES / 2 )) \
            && [ "$(grep -c "^shop_event_deliveries_total{.*} $published\$" <<<"$metrics")" \
                = "$(grep -c '^shop_event_deliveries_total{' <<<"$metrics")" ]; then break; fi
        sleep 0.2
    done
    echo "== $name: $CHANGES changes, $published events"
    grep -E '^shop_event_delivery_lag_seconds\{' <<<"$metrics" \
        | sed -E 's/shop_event_delivery_lag_seconds\{consumer="([^"]+)",quantile="([^"]+)"\} (.*)/\1 \2 \3/' \
        | awk '{printf "  %-24s p%-4s %8.2f ms\n", $1, $2 * 100, $3 * 1000}'
    stop_pid "$pid"
}

measure_on_both_backends lag
