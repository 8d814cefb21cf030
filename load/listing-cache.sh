#!/usr/bin/env bash
# The listing pages' cache hit ratio while orders flow: shop-load's normal
# profile (registrations, browsing and searching, orders, shoppers'
# checkouts) against shop-local (the fast build) on the embedded store,
# then on DynamoDB Local + Redis; then the products-list route's catalog
# cache lookups from /metrics (shop_cache_lookups_total), and the orders
# placed meanwhile. Every server runs on a free loopback port and is
# stopped by PID. The last line is one JSON object with both ratios.
# Usage: load/listing-cache.sh [seconds] [users]   (default 60 50)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
SECONDS_RUN=${1:-60}
USERS=${2:-50}
source load/both-backends.sh
cargo build --quiet --profile fast -p load
RATIOS=()

measure() {
    local name=$1
    serve "$@"
    local port=$SERVED_PORT dir=$SERVED_DIR
    target/fast/shop-load --base-url "http://127.0.0.1:$port" --profile normal --users "$USERS" \
        --duration "$SECONDS_RUN" --ramp-up 5 --json "$dir/report.json" >"$dir/load.log"
    local metrics hits misses orders ratio
    metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
    hits=$(sed -n 's/^shop_cache_lookups_total{route="products-list",result="hit"} //p' <<<"$metrics")
    misses=$(sed -n 's/^shop_cache_lookups_total{route="products-list",result="miss"} //p' <<<"$metrics")
    orders=$(sed -n 's/^shop_orders_placed_total //p' <<<"$metrics")
    ratio=$(python3 -c "print(round(${hits:-0} / max(1, ${hits:-0} + ${misses:-0}), 4))")
    echo "== $name: products-list ${hits:-0} hits, ${misses:-0} misses (hit ratio $ratio); ${orders:-0} orders placed"
    RATIOS+=("\"$name\": {\"hits\": ${hits:-0}, \"misses\": ${misses:-0}, \"hitRatio\": $ratio, \"orders\": ${orders:-0}}")
    stop_pid "$SERVED_PID"
}

measure_on_both_backends listing-cache
(IFS=,; echo "{${RATIOS[*]}}")
