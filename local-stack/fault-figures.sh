#!/usr/bin/env bash
# Prints the "Failure behaviour" figures of docs/operations.md: runs the fault tests
# (local-stack/tests/faults/, the same scenarios test-all.sh runs) and
# keeps each scenario's line of measurements. Installs redis-server and
# DynamoDB Local if missing; every stand-in runs on a free loopback port and
# is stopped by its PID.
# Usage: local-stack/fault-figures.sh [runs]   (default 1)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
ensure_redis
ensure_dynamodb_local
for run in $(seq 1 "${1:-1}"); do
    log "run $run"
    cargo test --workspace --test faults -- --test-threads 1 --nocapture 2>&1 | grep '^FAULT-FIGURES' \
        | sed 's/^FAULT-FIGURES | //'
done
