#!/usr/bin/env bash
# Cold and warm latency of every route through `sam local start-api`
# (local-stack/sam-local.sh): a fresh start, then per route its first
# request (its function's init) and N warm ones (p50, p99), as one
# Markdown table (load/sam_local_measure.py). Everything it starts is
# stopped by PID.
# Usage: load/sam-local-measure.sh [N]   (default 50)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
N=${1:-50}
local-stack/sam-local.sh stop >/dev/null 2>&1 || true
trap 'local-stack/sam-local.sh stop' EXIT
URL=$(RATE_LIMIT_MAX=1000000000 AUTH_RATE_LIMIT_MAX=1000000000 local-stack/sam-local.sh start | tail -1)
"$REPO_DIR/.venv/bin/python" load/sam_local_measure.py "$URL" "$REPO_DIR/.sam-local/admin-env" \
    "$REPO_DIR/target/debug/shop-local" "$N"
