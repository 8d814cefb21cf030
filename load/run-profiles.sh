#!/usr/bin/env bash
# Runs shop-load's five profiles against a fresh local server and keeps
# each JSON report.
#
#   load/run-profiles.sh embedded|dynamodb [results dir, default load/results]
#   PROFILES="spike checkout" load/run-profiles.sh dynamodb   (some of them)
#   PAYMENTS=stripe load/run-profiles.sh embedded             (shoppers pay)
#
# embedded: the default store and in-process cache. dynamodb: DynamoDB
# Local and Redis, started here on free loopback ports. PAYMENTS=stripe:
# the server takes payments through localstripe (started here too), and
# every checkout is paid with Stripe's test card. The server and the
# load share this machine; the server is built with the fast profile and
# started with rate limits high enough that one client IP is not limited.
set -euo pipefail
cd "$(dirname "$0")/.."
source local-stack/lib.sh

BACKEND="${1:-embedded}"
RESULTS="${2:-load/results}"
mkdir -p "$RESULTS"
cargo build --profile fast -p local-stack -p load --quiet

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do stop_pid "$pid"; done; rm -rf "$WORK"; }
trap cleanup EXIT

SERVER_ENV=()
if [ "$BACKEND" = dynamodb ]; then
    ensure_redis
    ensure_dynamodb_local
    REDIS_PORT=$(free_port); PIDS+=("$(start_redis "$REDIS_PORT")")
    DYNAMODB_PORT=$(free_port); PIDS+=("$(start_dynamodb "$DYNAMODB_PORT")")
    SERVER_ENV+=(STORE=dynamodb TABLE_NAME=shop-load AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DYNAMODB_PORT"
        CACHE_URL="redis://127.0.0.1:$REDIS_PORT")
fi
if [ "${PAYMENTS:-none}" = stripe ]; then
    STRIPE_PORT=$(free_port); PIDS+=("$(start_localstripe "$STRIPE_PORT")")
    SERVER_ENV+=(PAYMENT_PROVIDER=stripe STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT"
        STRIPE_SECRET_KEY=sk_test_load STRIPE_WEBHOOK_SECRET=whsec_load_profiles)
fi
PORT=$(free_port)
PIDS+=("$(start_load_server "$PORT" "$WORK" "${SERVER_ENV[@]}")")
if [ "${PAYMENTS:-none}" = stripe ]; then
    curl -sf -o /dev/null "http://127.0.0.1:$STRIPE_PORT/_config/webhooks/load" \
        --data-urlencode "url=http://127.0.0.1:$PORT/api/payments/stripe/webhook" \
        --data-urlencode "secret=whsec_load_profiles"
fi

for profile in ${PROFILES:-normal stress spike browse checkout}; do
    echo "== $BACKEND / $profile"
    target/fast/shop-load --base-url "http://127.0.0.1:$PORT" --profile "$profile" \
        --json "$RESULTS/$BACKEND${PAYMENTS:+-$PAYMENTS}-$profile.json" || true
done
