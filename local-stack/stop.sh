#!/usr/bin/env bash
# Stops what local-stack/start.sh started; the data stays for next time.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

PIDS_FILE="${DATA_DIR:-.data}/local-stack/pids"
if [ ! -f "$PIDS_FILE" ]; then
    log "nothing to stop ($PIDS_FILE does not exist)"
    exit 0
fi
read -r -a pids <"$PIDS_FILE"
for pid in "${pids[@]}"; do
    stop_pid "$pid"
done
rm -f "$PIDS_FILE"
log "stopped"
