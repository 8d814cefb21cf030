#!/usr/bin/env bash
# How long the queries a customer or the reservation expiry runs take on
# DynamoDB Local: `query-bench` (the fast build, through the store port, no
# cache) on a fresh DynamoDB Local on a free loopback port, stopped by PID
# afterwards. The last line is the JSON report (p50 and p95 per query).
# Usage: load/query-bench.sh [orders] [runs]   (default 2000 50)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
ORDERS=${1:-2000}
RUNS=${2:-50}
ensure_dynamodb_local
cargo build --quiet --profile fast -p local-stack --bin query-bench
DYNAMODB_PID=
trap 'stop_pid "$DYNAMODB_PID"' EXIT
port=$(free_port)
DYNAMODB_PID=$(start_dynamodb "$port")
AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
    AWS_REGION=us-east-1 target/fast/query-bench --orders "$ORDERS" --runs "$RUNS"
