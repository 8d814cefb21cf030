# shellcheck shell=bash
# Sourced by load/event-lag.sh, load/webhook-latency.sh,
# load/listing-cache.sh and load/flash-sale.sh, which measure on both
# backends, and by load/partition-heat.sh (DynamoDB only): the stand-ins
# installed, the fast shop-local built, a work directory and a list of
# PIDs stopped on exit.
# The caller defines `measure NAME [VAR=VALUE ...]` (NAME: a directory
# under $WORK; the variables choose the backend; append what it starts to
# PIDS) and then calls `measure_on_both_backends TABLE_PREFIX`.
ensure_redis
ensure_dynamodb_local
cargo build --quiet --profile fast -p local-stack
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# serve NAME [VAR=VALUE ...]: shop-local (the fast build) for the
# measurement NAME on a free loopback port, with the variables; sets
# SERVED_PORT, SERVED_DIR ($WORK/NAME) and SERVED_PID, stopped on exit.
serve() {
    local name=$1
    shift
    SERVED_PORT=$(free_port)
    SERVED_DIR="$WORK/$name"
    mkdir -p "$SERVED_DIR"
    SERVED_PID=$(start_load_server "$SERVED_PORT" "$SERVED_DIR" "$@")
    PIDS+=("$SERVED_PID")
}

# measure_on_both_backends TABLE_PREFIX: `measure embedded`, then
# `measure dynamodb` against DynamoDB Local and Redis started here on free
# loopback ports, in a table of its own.
measure_on_both_backends() {
    measure embedded
    local dynamodb_port redis_port
    dynamodb_port=$(free_port)
    redis_port=$(free_port)
    PIDS+=("$(start_dynamodb "$dynamodb_port")")
    PIDS+=("$(start_redis "$redis_port")")
    measure dynamodb STORE=dynamodb AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dynamodb_port" \
        TABLE_NAME="$1-$RANDOM" CACHE_URL="redis://127.0.0.1:$redis_port"
}
