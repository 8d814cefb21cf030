#!/usr/bin/env bash
# Compression benchmark: bytes on the wire and wrk latency of GET
# /api/products?limit=100 (a full page of the seeded catalog, served from
# the cache) plain, gzip and brotli, against the fast build of shop-local
# on a free loopback port with a fresh, seeded data folder; stopped at the
# end.
#
#   load/compression-bench.sh [seconds per run, default 15] [clients, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
source local-stack/lib.sh

DURATION="${1:-15}"
CLIENTS="${2:-10}"
command -v wrk >/dev/null 2>&1 || apt_install wrk
cargo build --profile fast -p local-stack --quiet

WORK="$(mktemp -d)"
DATA_DIR="$WORK/data" LOG_LEVEL=warn target/fast/shop-local seed >/dev/null
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/api/products?limit=100"
SERVER=$(start_load_server "$PORT" "$WORK")
trap 'stop_pid $SERVER; rm -rf "$WORK"' EXIT

echo "== GET /api/products?limit=100; wrk -t2 -c$CLIENTS -d${DURATION}s, fast profile, embedded store, in-process cache"
printf '%-10s %10s %12s %10s %10s\n' coding bytes req/s p50 p99
for coding in identity gzip br; do
    bytes=$(curl -s -o /dev/null -w '%{size_download}' -H "accept-encoding: $coding" "$URL")
    result=$(wrk -t2 -c"$CLIENTS" -d"${DURATION}s" --latency -H "accept-encoding: $coding" "$URL")
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$result")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$result")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$result")
    printf '%-10s %10s %12s %10s %10s\n' "$coding" "$bytes" "$rps" "$p50" "$p99"
done
