#!/usr/bin/env bash
# Where the shopper mix's writes land, partition by partition: shop-local
# (the fast build) on a fresh DynamoDB Local table with Redis and
# localstripe, DYNAMODB_PARTITION_REPORT on, and shop-load's shoppers
# (browse, fill a cart, check out, pay, one order in ten cancelled) for
# SECONDS. DynamoDB Local enforces no partition limit; the report charges
# every successful write to its table partition and index partitions (see
# shared/src/store/dynamodb/heat.rs), so the hottest partition says the
# order rate at which AWS would start throttling (1,000 write units a
# second a partition). Every server runs on a free loopback port and is
# stopped by PID. Prints each key pattern's hottest partition, then, as the
# last line, one JSON object: hottestPartition, hottestShare,
# ordersPerSecondAtLimit, orders, totalUnits, unknownItems.
# Usage: load/partition-heat.sh [seconds] [users] [profile]
#   (default 60 20 shoppers; `flash-sale` runs shop-load's flash sale)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
SECONDS_RUN=${1:-60}
USERS=${2:-20}
PROFILE=${3:-shoppers}
ensure_redis
ensure_dynamodb_local
ensure_localstripe
cargo build --quiet --profile fast -p local-stack -p load
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

dynamodb_port=$(free_port)
redis_port=$(free_port)
stripe_port=$(free_port)
PIDS+=("$(start_dynamodb "$dynamodb_port" "$WORK/dynamodb")")
PIDS+=("$(start_redis "$redis_port")")
PIDS+=("$(start_localstripe "$stripe_port")")
port=$(free_port)
PIDS+=("$(start_load_server "$port" "$WORK" STORE=dynamodb TABLE_NAME=partition-heat \
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dynamodb_port" CACHE_URL="redis://127.0.0.1:$redis_port" \
    PAYMENT_PROVIDER=stripe STRIPE_API_BASE="http://127.0.0.1:$stripe_port" \
    STRIPE_SECRET_KEY=sk_test_heat STRIPE_WEBHOOK_SECRET=whsec_partition_heat \
    DYNAMODB_PARTITION_REPORT="$WORK/heat.json")")
curl -sf -o /dev/null "http://127.0.0.1:$stripe_port/_config/webhooks/heat" \
    --data-urlencode "url=http://127.0.0.1:$port/api/payments/stripe/webhook" \
    --data-urlencode "secret=whsec_partition_heat"

case $PROFILE in
    shoppers) load=(--profile checkout --weights "0,0,0,0,1") ;;
    *) load=(--profile "$PROFILE") ;;
esac
target/fast/shop-load --base-url "http://127.0.0.1:$port" "${load[@]}" --users "$USERS" \
    --duration "$SECONDS_RUN" --ramp-up 2 --json "$WORK/load.json" >"$WORK/load.log" 2>&1 &
load_pid=$!
# The setup (the catalog, its search entries, the customers) is not the
# mix: once shop-load measures its ceiling, after the setup, the report
# starts counting again.
wait_until "$load_pid" 120 0.5 grep -q '^ceiling:' "$WORK/load.log" || true
sleep 2
touch "${WORK}/heat.restart"
wait "$load_pid" || true
grep -E '(shopping|flash)' "$WORK/load.log" | head -20 >&2 || true
# The stream poller's backlog (the event log, the search index, the
# payments' consumers) drains after the load: wait until the report (written
# once a second when it changed) stays the same for 5 s, at most 3 minutes.
previous='' quiet=0
for _ in $(seq 1 180); do
    sleep 1
    current=$(cksum <"$WORK/heat.json")
    if [ "$current" = "$previous" ]; then quiet=$((quiet + 1)); else quiet=0; fi
    previous=$current
    [ "$quiet" -lt 5 ] || break
done
python3 - "$WORK/heat.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"{'pattern':<44} {'partitions':>10} {'units/order (hottest)':>22} {'orders/s at limit':>18}")
for p in report["patterns"][:25]:
    print(f"{p['pattern']:<44} {p['partitions']:>10} {p['hottestUnitsPerOrder']:>22} {p['ordersPerSecondAtLimit']:>18,.0f}")
print(json.dumps({k: report[k] for k in
    ("hottestPartition", "hottestShare", "ordersPerSecondAtLimit", "orders", "totalUnits", "unknownItems")}))
EOF
