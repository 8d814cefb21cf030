#!/usr/bin/env bash
# Measures every Lambda function binary as Lambda runs it (see
# load/lambda_measure.py): the init phase as AWS's Runtime Interface
# Emulator reports it and the cold start (median of 15 fresh instances),
# warm round trips (p50/p99, cached and uncached where a route caches),
# and RSS, each function in a clean environment (its own variables, PATH,
# HOME), against DynamoDB Local and Redis on free loopback ports.
#
#   load/lambda-measure.sh [function ...]      (default: all 37)
#   MEASURE_COLD=15 MEASURE_WARM=200 MEASURE_JSON=out.json load/lambda-measure.sh
#
# The binaries are the release profile exactly as deployed (fat LTO,
# opt-level z), built for this host (x86_64); `cargo lambda build --release`
# builds the same code for Lambda.
set -euo pipefail
cd "$(dirname "$0")/.."
source local-stack/lib.sh

source load/lambda-stand-ins.sh
PYTHONPATH=load python3 load/lambda_measure.py "$RIE" "$REPO_DIR/target/release" "$REPO_DIR/target/fast/shop-local" \
    "$WORK/env" "$@"
