#!/usr/bin/env bash
# A flash sale on both backends: shop-load's flash-sale profile (BUYERS
# buyers at once, one product of UNITS units spread over COUNTERS stock
# counters, one unit an order, for SECONDS) against shop-local (the fast
# build) on the embedded store, then on DynamoDB Local + Redis. It passes
# only when exactly UNITS orders won and every other buyer's answer was a
# 409, never a 5xx. A 429 (no turn in time) is asked again after its
# Retry-After, as a client is told to, and counted (`busy`). Every server
# runs on a free loopback port and is stopped by PID. The last line is one JSON object with each backend's outcome; the
# exit status is 0 only when both were exact.
# Usage: load/flash-sale.sh [buyers] [units] [counters] [seconds]
#   (default 200 1000 8 20)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
BUYERS=${1:-200}
UNITS=${2:-1000}
COUNTERS=${3:-8}
SECONDS_RUN=${4:-20}
source load/both-backends.sh
cargo build --quiet --profile fast -p load
OUTCOMES=()
ALL_EXACT=true

measure() {
    local name=$1
    serve "$@"
    local port=$SERVED_PORT dir=$SERVED_DIR
    target/fast/shop-load --base-url "http://127.0.0.1:$port" --profile flash-sale --users "$BUYERS" \
        --units "$UNITS" --counters "$COUNTERS" --duration "$SECONDS_RUN" --json "$dir/report.json" \
        >"$dir/load.log" 2>&1 || ALL_EXACT=false
    grep '^flash sale:' "$dir/load.log" | sed "s/^/== $name: /" || true
    OUTCOMES+=("\"$name\": $(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["flash_sale"]))' "$dir/report.json")")
    stop_pid "$SERVED_PID"
}

measure_on_both_backends flash-sale
(IFS=,; echo "{${OUTCOMES[*]}}")
[ "$ALL_EXACT" = true ]
