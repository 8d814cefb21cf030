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
# ordersPerSecondAtLimit, orders, totalUnits, unknownItems, and apart the
# hottest of one customer's own partitions (a cart, a user's orders), whose
# heat grows with that customer's activity, not with the shop's orders;
# then the hottest of one product's own partitions (its item, a stock
# counter) and productOrdersPerSecondAtLimit, that product's ceiling.
# Usage: load/partition-heat.sh [seconds] [users] [profile] [counters] [units]
#   (default 60 20 shoppers; `flash-sale` runs shop-load's flash sale of
#   UNITS units (default 100000, more than a run sells) spread over
#   COUNTERS stock counters (default 1))
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
SECONDS_RUN=${1:-60}
USERS=${2:-20}
PROFILE=${3:-shoppers}
COUNTERS=${4:-1}
UNITS=${5:-100000}
# The stand-ins installed, the fast shop-local built, $WORK and $PIDS
# stopped on exit (shared with the other load scripts).
source load/both-backends.sh
ensure_localstripe
cargo build --quiet --profile fast -p load

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
    flash-sale) load=(--profile flash-sale --units "$UNITS" --counters "$COUNTERS") ;;
    *) load=(--profile "$PROFILE") ;;
esac
# The setup (the catalog, its search entries and listing entries, the
# customers) is not the mix: shop-load pauses 30 s after it, the report is
# left to settle (the change feed catching up), then counting starts again
# before the attack does.
target/fast/shop-load --base-url "http://127.0.0.1:$port" "${load[@]}" --users "$USERS" \
    --duration "$SECONDS_RUN" --ramp-up 2 --settle 30 --json "$WORK/load.json" >"$WORK/load.log" 2>&1 &
load_pid=$!
wait_until "$load_pid" 240 0.5 grep -q '^settling:' "$WORK/load.log" || true
report_quiet_for() {
    local seconds=$1 limit=$2 previous='' current quiet=0
    for _ in $(seq 1 "$limit"); do
        sleep 1
        current=$(cksum <"$WORK/heat.json")
        if [ "$current" = "$previous" ]; then quiet=$((quiet + 1)); else quiet=0; fi
        previous=$current
        [ "$quiet" -lt "$seconds" ] || return 0
    done
}
report_quiet_for 3 25
touch "${WORK}/heat.restart"
wait "$load_pid" || true
grep -E '(shopping|flash)' "$WORK/load.log" | head -20 >&2 || true
# The stream poller's backlog (the event log, the search index, the
# payments' consumers) drains after the load: wait until the report (written
# once a second when it changed) stays the same for 5 s, at most 3 minutes.
report_quiet_for 5 180
python3 - "$WORK/heat.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"{'partition pattern':<52} {'partitions':>10} {'units an order':>15} {'orders/s at limit':>18}")
for p in report["patterns"][:30]:
    own = " (one customer's)" if p["oneCustomers"] else ""
    print(f"{p['pattern'] + own:<52} {p['partitions']:>10} {p['hottestUnitsPerOrder']:>15} "
          f"{p['ordersPerSecondAtLimit']:>18,.0f}")
print(json.dumps({k: report[k] for k in
    ("hottestPartition", "hottestShare", "ordersPerSecondAtLimit", "orders", "totalUnits", "unknownItems",
     "hottestCustomerPartition", "hottestCustomerUnitsPerOrder", "hottestProductPartition",
     "productOrdersPerSecondAtLimit")}))
# No order counted: the load failed (see its log above), not a result.
sys.exit(0 if report["orders"] > 0 else 1)
EOF
