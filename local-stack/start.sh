#!/usr/bin/env bash
# Starts the local AWS stand-ins for development, keeping their data:
# DynamoDB Local (-dbPath) and redis-server (append-only file), both on
# 127.0.0.1, under DATA_DIR/local-stack (default .data/local-stack).
#
#   local-stack/start.sh              ports 8000 (DynamoDB) and 6379 (Redis)
#   DYNAMODB_PORT=8001 REDIS_PORT=6380 local-stack/start.sh
#   local-stack/stop.sh               stops both
#
# Then serve the API against them with the command this script prints.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

STATE_DIR="${DATA_DIR:-.data}/local-stack"
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
DYNAMODB_PORT="${DYNAMODB_PORT:-8000}"
REDIS_PORT="${REDIS_PORT:-6379}"

if [ -f "$STATE_DIR/pids" ]; then
    log "already started (see $STATE_DIR/pids); run local-stack/stop.sh first"
    exit 1
fi

ensure_redis
ensure_dynamodb_local

redis_pid=$(REDIS_LOG="$STATE_DIR/redis.log" start_redis "$REDIS_PORT" "$STATE_DIR/redis")
dynamodb_pid=$(DYNAMODB_LOG="$STATE_DIR/dynamodb.log" start_dynamodb "$DYNAMODB_PORT" "$STATE_DIR/dynamodb") || { stop_pid "$redis_pid"; exit 1; }
echo "$redis_pid $dynamodb_pid" >"$STATE_DIR/pids"

log "redis-server on 127.0.0.1:$REDIS_PORT (pid $redis_pid), DynamoDB Local on 127.0.0.1:$DYNAMODB_PORT (pid $dynamodb_pid)"
log "data and logs in $STATE_DIR"
cat <<MSG
Serve the API against them (the table is created on first start):

  STORE=dynamodb AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMODB_PORT \\
  CACHE_URL=redis://127.0.0.1:$REDIS_PORT cargo run --release -p local-stack
MSG
