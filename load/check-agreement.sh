#!/usr/bin/env bash
# Checks shop-load's percentiles against wrk's on single-endpoint runs with
# the same concurrency and duration, and fails when p50 or p99 differ by
# more than 20 %.
#
#   load/check-agreement.sh [seconds, default 20]
#
# Checked: POST /api/auth/register (4 clients; argon2 dominates, so each
# tool's own overhead is negligible). Reported: GET /health (4 clients),
# where a request costs microseconds and the tools' overheads differ.
set -euo pipefail
cd "$(dirname "$0")/.."
source local-stack/lib.sh

SECONDS_PER_RUN="${1:-20}"
command -v wrk >/dev/null 2>&1 || apt_install wrk
cargo build --profile fast -p local-stack -p load --quiet

WORK="$(mktemp -d)"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
SERVER=$(start_load_server "$PORT" "$WORK")
trap 'stop_pid $SERVER; rm -rf "$WORK"' EXIT

# shop-load's p50/p99 (ms) of the one request name in its JSON report.
load_percentiles() {
    python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
(name, figures), = [(n, f) for n, f in report["requests_by_name"].items() if f["requests"]]
print(figures["latency_ms"]["p50"], figures["latency_ms"]["p99"], name)' "$1"
}
# wrk's p50/p99 (ms) from its --latency distribution.
wrk_percentiles() {
    python3 -c '
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    value, unit = re.search(r"^\s+" + label + r"%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
print(ms("50"), ms("99"))' "$1"
}
compare() {
    python3 -c '
import sys
name, lp50, lp99, wp50, wp99 = sys.argv[1], *map(float, sys.argv[2:6])
ok = all(abs(a - b) / b <= 0.20 for a, b in ((lp50, wp50), (lp99, wp99)))
verdict = "agree" if ok else "DIFFER"
print(f"{name}: shop-load p50 {lp50:.2f} ms p99 {lp99:.2f} ms | wrk p50 {wp50:.2f} ms p99 {wp99:.2f} ms -> {verdict} (within 20 %)")
sys.exit(0 if ok else 1)' "$@"
}

status=0
echo "-- POST /api/auth/register, 4 clients, ${SECONDS_PER_RUN}s"
target/fast/shop-load --base-url "$BASE" --profile normal --weights 1,0,0,0 --users 4 --ramp-up 0 \
    --duration "$SECONDS_PER_RUN" --products 10 --ceiling-seconds 1 --json "$WORK/register.json" >/dev/null 2>&1 || true
wrk -t2 -c4 -d"${SECONDS_PER_RUN}s" --latency -s load/wrk/register.lua "$BASE" >"$WORK/register.wrk" 2>/dev/null
read -r lp50 lp99 _ < <(load_percentiles "$WORK/register.json")
read -r wp50 wp99 < <(wrk_percentiles "$WORK/register.wrk")
compare register "$lp50" "$lp99" "$wp50" "$wp99" || status=1

echo "-- GET /health, 4 clients, ${SECONDS_PER_RUN}s (a cheap request: client overhead shows; reported, not checked)"
target/fast/shop-load --base-url "$BASE" --profile browse --weights 0,0,0,1 --users 4 --ramp-up 0 \
    --duration "$SECONDS_PER_RUN" --products 10 --ceiling-seconds 1 --json "$WORK/health.json" >/dev/null 2>&1 || true
wrk -t2 -c4 -d"${SECONDS_PER_RUN}s" --latency "$BASE/health" >"$WORK/health.wrk" 2>/dev/null
read -r lp50 lp99 _ < <(load_percentiles "$WORK/health.json")
read -r wp50 wp99 < <(wrk_percentiles "$WORK/health.wrk")
compare health "$lp50" "$lp99" "$wp50" "$wp99" || true
exit $status
