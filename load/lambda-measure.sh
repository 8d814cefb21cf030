#!/usr/bin/env bash
# Measures the Lambda function binaries as Lambda runs them (see
# load/lambda_measure.py): binary size, cold start through cargo lambda's
# Runtime API emulator, and RSS after 1000 warm invocations, against
# DynamoDB Local and Redis on free loopback ports.
#
#   load/lambda-measure.sh [function ...]    (default: health auth-login products-list orders-get)
#
# The sizes measured are of host (x86_64) release binaries; for the arm64
# Lambda artifacts run `cargo lambda build --release --arm64 -p functions`
# and look at target/lambda/*/bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
source local-stack/lib.sh

VENV="$REPO_DIR/.venv"
if ! [ -x "$VENV/bin/cargo-lambda" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
fi
ensure_redis
ensure_dynamodb_local
# The function binaries alone: -p functions, so the workspace's features
# (embedded store, aws-config) do not leak into them.
FUNCTIONS=("$@")
[ ${#FUNCTIONS[@]} -gt 0 ] || FUNCTIONS=(health auth-login products-list orders-get)
cargo build --release -p functions --quiet $(printf -- '--bin %s ' "${FUNCTIONS[@]}")
cargo build --release -p local-stack --quiet

WORK="$(mktemp -d)"
REDIS_PORT=$(free_port)
REDIS_PID=$(start_redis "$REDIS_PORT")
DYNAMODB_PORT=$(free_port)
DYNAMODB_PID=$(start_dynamodb "$DYNAMODB_PORT")
trap 'stop_pid $REDIS_PID; stop_pid $DYNAMODB_PID; rm -rf "$WORK"' EXIT

cat >"$WORK/env" <<ENV
STORE=dynamodb
TABLE_NAME=shop-measure
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMODB_PORT
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
CACHE_URL=redis://127.0.0.1:$REDIS_PORT
JWT_SECRET=measure-secret-measure-secret-measure-secret
LOG_LEVEL=warn
RATE_LIMIT_MAX=1000000000
AUTH_RATE_LIMIT_MAX=1000000000
ENV
env $(cat "$WORK/env") target/release/shop-local create-table
python3 load/lambda_measure.py "$VENV/bin/cargo-lambda" "$REPO_DIR/target/release" "$WORK/env" "${FUNCTIONS[@]}"
