#!/usr/bin/env bash
# The Lambda functions as Lambda runs them, offline: `sam build`, then
# `sam local start-api` (every route's function behind SAM's API Gateway
# emulation) and `sam local invoke` (every function with its events/
# samples), in containers of a dockerd of this script's own, against
# DynamoDB Local and Redis.
#
#   local-stack/sam-local.sh start      # prints the API's base URL last
#   local-stack/sam-local.sh build      # only the build start does (.sam-local/build; localstack.sh deploys it)
#   local-stack/sam-local.sh invoke-all # every function with its samples, each answer checked
#   local-stack/sam-local.sh stop       # stops everything start started, by PID
#
# start installs what is missing (docker.io, busybox-static, the venv's SAM
# and cargo-lambda), starts dockerd with its own data root, exec root and
# socket under .sam-local/ (no iptables changes), imports the base image
# SAM builds its emulator image from when it cannot be pulled (busybox and
# the host's glibc: what a bootstrap and SAM's `RUN mv, chmod` need), builds
# every function with cargo-lambda once (x86_64; arm64 where that Rust
# target is installed), starts DynamoDB Local, Redis and localstripe (the
# payment functions' Stripe; .sam-local/stripe-url) on the Docker bridge's
# gateway address (the one address containers reach the host on; never
# every interface), creates the table, starts the API with one warm
# container per function on a free loopback port, and registers the API's
# webhook route with localstripe.
#
# Environment: ADMIN_EMAILS, RATE_LIMIT_MAX, AUTH_RATE_LIMIT_MAX and
# JWT_SECRET pass through to the functions (ADMIN_EMAILS is ignored in
# Lambda by design: make admins with `shop-local admin grant`, for which
# .sam-local/admin-env has the variables). SAM_LOCAL_DIR moves the state
# folder.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

STATE="${SAM_LOCAL_DIR:-$REPO_DIR/.sam-local}"
VENV="$REPO_DIR/.venv"
export DOCKER_HOST="unix://$STATE/docker.sock"
export SAM_CLI_TELEMETRY=0
# SAM asks STS who the caller is on every run: offline that waits 8-10 s
# for nothing; a closed local port fails at once.
export AWS_ENDPOINT_URL_STS="http://127.0.0.1:9"
# ... and without retrying it: one attempt, not a backoff of seconds.
export AWS_MAX_ATTEMPTS=1
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
BASE_IMAGE_REPO=public.ecr.aws/lambda/provided
SAM=("$VENV/bin/sam")

if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
    ARCH=arm64
else
    ARCH=x86_64
fi
BASE_IMAGE="$BASE_IMAGE_REPO:al2023-$ARCH"

state() { cat "$STATE/$1" 2>/dev/null || true; }

ensure_tools() { ensure_lambda_emulator_tools "$VENV"; }

# Every function once: one cargo-lambda build of both packages (their
# binaries link in parallel), so that sam build's per-function builds find
# them fresh. SAM_LOCAL_BUILD=release keeps the release profile as it is
# (fat LTO, one codegen unit: about 40 s of linking per binary on one
# core, 37 binaries); the default, for tests, builds the same code without
# LTO and with 16 codegen units, through the same profile (so sam build's
# own `cargo lambda build --release` agrees), in a fraction of the time.
build_functions() {
    if [ "${SAM_LOCAL_BUILD:-test}" != release ]; then
        export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1
    fi
    log "cargo lambda build --release --$ARCH of every function (SAM_LOCAL_BUILD=${SAM_LOCAL_BUILD:-test})"
    # Apart: built together, cargo would unify the docs feature into every
    # function (Swagger UI in each binary).
    PATH="$VENV/bin:$PATH" cargo lambda build --release "--${ARCH/_/-}" -p functions
    PATH="$VENV/bin:$PATH" cargo lambda build --release "--${ARCH/_/-}" -p functions-docs
    log "sam build ($ARCH)"
    PATH="$VENV/bin:$PATH" "${SAM[@]}" build --template template.yaml --build-dir "$STATE/build" --cache-dir "$STATE/cache" \
        --parameter-overrides "Architecture=$ARCH" >"$STATE/build.log" 2>&1 || {
        tail -30 "$STATE/build.log" >&2
        return 1
    }
}

# SAM passes only variables a function declares; every one the template's
# Globals (and the webhook and event functions) declare is set here.
write_env_file() {
    local host=$1 dynamodb_port=$2 redis_port=$3 table=$4 stripe_port=$5
    python3 - "$STATE/env.json" <<PY
import json, os, sys
values = {
    "STORE": "dynamodb",
    "TABLE_NAME": "$table",
    "AWS_ENDPOINT_URL_DYNAMODB": "http://$host:$dynamodb_port",
    "CACHE_URL": "redis://$host:$redis_port",
    "CACHE_KEY_PREFIX": "sam-local",
    "JWT_SECRET": os.environ.get("JWT_SECRET") or "sam-local-secret-sam-local-secret-sam-local",
    "ADMIN_EMAILS": os.environ.get("ADMIN_EMAILS", ""),
    "RATE_LIMIT_MAX": os.environ.get("RATE_LIMIT_MAX", "5000"),
    "AUTH_RATE_LIMIT_MAX": os.environ.get("AUTH_RATE_LIMIT_MAX", "500"),
    "RATE_LIMIT_WINDOW_SECONDS": "900",
    "METRICS": "off",
    "LOG_LEVEL": "warn",
    # No bus, no queues offline: a closed port fails at once.
    "EVENT_BUS_NAME": "sam-local",
    "AWS_ENDPOINT_URL_EVENTBRIDGE": "http://$host:9",
    "AWS_ENDPOINT_URL_SQS": "http://$host:9",
    "WEBHOOK_QUEUE_URL": "http://$host:9/000000000000/deliveries",
    "WEBHOOK_DEAD_LETTER_QUEUE_URL": "http://$host:9/000000000000/dead-letters",
    # Payments against localstripe (the functions that talk to Stripe
    # declare these; the others never see them).
    "PAYMENT_PROVIDER": "stripe",
    "STRIPE_SECRET_KEY": "sk_test_sam_local",
    "STRIPE_WEBHOOK_SECRET": "$(state stripe-webhook-secret)",
    "STRIPE_API_BASE": "http://$host:$stripe_port",
}
json.dump({"Parameters": values}, open(sys.argv[1], "w"), indent=2)
PY
    cat >"$STATE/admin-env" <<ENV
STORE=dynamodb
TABLE_NAME=$table
AWS_ENDPOINT_URL_DYNAMODB=http://$host:$dynamodb_port
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
ENV
}

start() {
    if [ -f "$STATE/sam.pid" ] && kill -0 "$(state sam.pid)" 2>/dev/null; then
        log "already running: $(state url)"
        state url
        return 0
    fi
    mkdir -p "$STATE"
    ensure_tools
    cargo build --quiet -p local-stack
    build_functions
    start_dockerd "$STATE"
    import_lambda_base_image "$BASE_IMAGE" "target/lambda/health/bootstrap" "$STATE/base-image"
    local host
    host=$(bridge_address)
    local dynamodb_port redis_port
    dynamodb_port=$(free_port)
    redis_port=$(free_port)
    BIND_HOST=$host DYNAMODB_LOG="$STATE/dynamodb.log" start_dynamodb "$dynamodb_port" >"$STATE/dynamodb.pid"
    BIND_HOST=$host REDIS_LOG="$STATE/redis.log" start_redis "$redis_port" >"$STATE/redis.pid"
    local stripe_port
    stripe_port=$(free_port)
    BIND_HOST=$host LOCALSTRIPE_LOG="$STATE/localstripe.log" start_localstripe "$stripe_port" >"$STATE/stripe.pid"
    echo "http://$host:$stripe_port" >"$STATE/stripe-url"
    echo "whsec_sam_local_$RANDOM$RANDOM" >"$STATE/stripe-webhook-secret"
    write_env_file "$host" "$dynamodb_port" "$redis_port" "shop-sam-local" "$stripe_port"
    with_env_file "$STATE/admin-env" target/debug/shop-local create-table >/dev/null
    local port
    port=$(free_port)
    log "sam local start-api on 127.0.0.1:$port (one warm container per function; stand-ins on $host)"
    "${SAM[@]}" local start-api --template "$STATE/build/template.yaml" --host 127.0.0.1 --port "$port" \
        --env-vars "$STATE/env.json" --warm-containers EAGER --skip-pull-image --parameter-overrides "Architecture=$ARCH" \
        --container-host 127.0.0.1 --container-host-interface 127.0.0.1 >"$STATE/start-api.log" 2>&1 &
    echo $! >"$STATE/sam.pid"
    local url="http://127.0.0.1:$port"
    if wait_until "$(state sam.pid)" 600 0.2 curl -sf -o /dev/null "$url/health"; then
        echo "$url" >"$STATE/url"
        # localstripe (on the host) delivers its webhooks to the API.
        curl -sf -o /dev/null "$(state stripe-url)/_config/webhooks/sam-local" \
            --data-urlencode "url=$url/api/payments/stripe/webhook" \
            --data-urlencode "secret=$(state stripe-webhook-secret)"
        log "ready: $url"
        echo "$url"
        return 0
    fi
    log "sam local start-api did not answer:"
    tail -30 "$STATE/start-api.log" >&2
    return 1
}

# The logical id of every function of the built template, with its binary.
functions_of_template() {
    "$VENV/bin/python" - "$STATE/build/template.yaml" "template.yaml" <<'PY'
import sys
from samcli.yamlhelper import yaml_parse
built = yaml_parse(open(sys.argv[1]).read())["Resources"]
source = yaml_parse(open(sys.argv[2]).read())["Resources"]
for name, resource in built.items():
    if resource.get("Type") == "AWS::Serverless::Function":
        print(name, source[name]["Metadata"]["BuildProperties"]["Binary"])
PY
}

# Every function with its sample, on a table of its own (so the samples
# meet the same state on every run), in the template's order.
invoke_all() {
    [ -f "$STATE/env.json" ] || { log "not started"; return 1; }
    local table="shop-sam-invoke-$RANDOM$RANDOM"
    python3 - "$STATE/env.json" "$STATE/invoke-env.json" "$table" <<'PY'
import json, sys
env = json.load(open(sys.argv[1]))
env["Parameters"]["TABLE_NAME"] = sys.argv[3]
json.dump(env, open(sys.argv[2], "w"), indent=2)
PY
    with_env_file "$STATE/admin-env" TABLE_NAME="$table" target/debug/shop-local create-table >/dev/null
    local failures=0 name binary expected got
    while read -r name binary; do
        expected=$(expected_sample_answer "$binary")
        "${SAM[@]}" local invoke "$name" --template "$STATE/build/template.yaml" \
            --event "events/$binary.json" --env-vars "$STATE/invoke-env.json" --skip-pull-image \
            --parameter-overrides "Architecture=$ARCH" --container-host 127.0.0.1 \
            --container-host-interface 127.0.0.1 >"$STATE/invoke-$binary.out" 2>"$STATE/invoke-$binary.log" || true
        got=$(tail -1 "$STATE/invoke-$binary.out" | python3 -c '
import json, sys
answer = json.load(sys.stdin)
print(answer["statusCode"] if isinstance(answer, dict) and "statusCode" in answer else json.dumps(answer))
' 2>/dev/null || echo "no answer")
        if [ "$got" = "$expected" ]; then
            printf '  ok   %-24s %s\n' "$binary" "$got"
        else
            printf '  FAIL %-24s expected %s, got %s\n' "$binary" "$expected" "$got"
            tail -5 "$STATE/invoke-$binary.log" >&2
            failures=$((failures + 1))
        fi
    done < <(functions_of_template)
    [ "$failures" -eq 0 ] || { log "$failures functions answered other than expected"; return 1; }
}

stop() {
    stop_pid "$(state sam.pid)"
    stop_containers_and_dockerd "$STATE"
    stop_pid "$(state dynamodb.pid)"
    stop_pid "$(state redis.pid)"
    stop_pid "$(state stripe.pid)"
    rm -f "$STATE"/{sam.pid,dynamodb.pid,redis.pid,stripe.pid,url}
}

case "${1:-}" in
    start) start ;;
    build)
        mkdir -p "$STATE"
        ensure_tools
        build_functions
        ;;
    invoke-all) invoke_all ;;
    stop) stop ;;
    *) echo "usage: $0 start|build|invoke-all|stop" >&2; exit 2 ;;
esac
