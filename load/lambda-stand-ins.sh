# shellcheck shell=bash
# Sourced by load/lambda-measure.sh and load/lambda-cost.sh: the emulator
# (RIE, from SAM CLI's wheel in the venv), the release binaries, shop-local
# for the fixtures, DynamoDB Local and Redis on free loopback ports (stopped
# on exit), and $WORK/env: the template's variables with local values, all
# a function gets besides PATH and HOME. Callers add variables with
# EXTRA_FUNCTION_ENV (lines of NAME=value).
VENV="$REPO_DIR/.venv"
if ! [ -x "$VENV/bin/sam" ]; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli
fi
RIE=$("$VENV/bin/python" -c 'import samcli, os; print(os.path.join(os.path.dirname(samcli.__file__), "local/rapid/aws-lambda-rie-x86_64"))')
[ -x "$RIE" ] || { log "no emulator at $RIE"; exit 1; }
ensure_redis
ensure_dynamodb_local
# FUNCTIONS (names) builds only those: a release binary with fat LTO takes
# a core for a minute or two, and forty of them are half an hour on two.
if [ -n "${FUNCTIONS:-}" ]; then
    # Names on one line or several.
    read -r -d "" -a function_names <<<"$FUNCTIONS" || true
    cargo build --release -p functions --quiet "${function_names[@]/#/--bin=}"
else
    # Apart: built together, cargo would unify the docs feature into every
    # function (Swagger UI, about 2 MB, in each binary).
    cargo build --release -p functions --quiet
    cargo build --release -p functions-docs --quiet
fi
cargo build --profile fast -p local-stack --quiet

WORK="$(mktemp -d)"
REDIS_PORT=$(free_port)
REDIS_PID=$(start_redis "$REDIS_PORT")
DYNAMODB_PORT=$(free_port)
DYNAMODB_PID=$(start_dynamodb "$DYNAMODB_PORT")
trap 'stop_pid $REDIS_PID; stop_pid $DYNAMODB_PID; rm -rf "$WORK"' EXIT

# The template's variables with local values: what each function gets,
# and nothing else of this shell.
cat >"$WORK/env" <<ENV
STORE=dynamodb
TABLE_NAME=shop-measure
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMODB_PORT
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
CACHE_URL=redis://127.0.0.1:$REDIS_PORT
CACHE_KEY_PREFIX=shop-measure
JWT_SECRET=measure-secret-measure-secret-measure-secret
LOG_FORMAT=json
METRICS=emf
METRICS_NAMESPACE=ShopApi/measure
RATE_LIMIT_MAX=1000000000
AUTH_RATE_LIMIT_MAX=1000000000
REQUEST_TIMEOUT_MS=3000
CACHE_TIMEOUT_MS=200
WEBHOOK_ALLOW_INSECURE_URLS=true
EVENT_BUS_NAME=shop-measure
AWS_ENDPOINT_URL_EVENTBRIDGE=http://127.0.0.1:9
AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9
WEBHOOK_QUEUE_URL=http://127.0.0.1:9/000000000000/deliveries
WEBHOOK_DEAD_LETTER_QUEUE_URL=http://127.0.0.1:9/000000000000/dead-letters
${EXTRA_FUNCTION_ENV:-}
ENV
with_env_file "$WORK/env" target/fast/shop-local create-table
