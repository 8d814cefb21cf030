#!/usr/bin/env bash
# The customers' and the expiry's queries, before and after a change:
# `query-bench` of REV (default b2a8b56, committed before the partition
# keys changed) and of the working tree, both the fast build, run in turn
# (old, new, old, new...) ROUNDS times, each on a fresh DynamoDB Local on a
# free loopback port, stopped by PID. Interleaving keeps the machine's
# drift out of the comparison: separate runs of one build scatter by up to
# 80 % here. Prints each query's p50 per run, then, as the last line, one
# JSON object: each query's median p50 before and after.
# Usage: load/query-bench-ab.sh [rev] [rounds] [orders] [runs]
#   (default b2a8b56 3 2000 50; REV's build takes a few minutes, reusing
#   target/fast's dependencies)
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
REV=${1:-b2a8b56}
ROUNDS=${2:-3}
ORDERS=${3:-2000}
RUNS=${4:-50}
ensure_dynamodb_local
cargo build --quiet --profile fast -p local-stack --bin query-bench
WORK=$(mktemp -d)
DYNAMODB_PID=
cleanup() {
    stop_pid "$DYNAMODB_PID"
    git worktree remove --force "$WORK/old" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
git worktree add --detach --quiet "$WORK/old" "$REV"
[ -f Cargo.lock ] && cp Cargo.lock "$WORK/old/"
# The dependencies are the same crates: start from this tree's build.
mkdir -p "$WORK/target"
cp -r target/fast "$WORK/target/"
(cd "$WORK/old" && CARGO_TARGET_DIR="$WORK/target" cargo build --quiet --profile fast -p local-stack --bin query-bench)

run() {
    local label=$1 bin=$2 port
    port=$(free_port)
    DYNAMODB_PID=$(start_dynamodb "$port")
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
        AWS_REGION=us-east-1 "$bin" --orders "$ORDERS" --runs "$RUNS" | tail -1 >"$WORK/$label.json"
    stop_pid "$DYNAMODB_PID"
    DYNAMODB_PID=
    cat "$WORK/$label.json" >>"$WORK/runs-$label.jsonl"
}
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    run old "$WORK/target/fast/query-bench"
    run new target/fast/query-bench
done
python3 - "$WORK/runs-old.jsonl" "$WORK/runs-new.jsonl" <<'EOF'
import json, statistics, sys
p50s = {}
for label, path in (("before", sys.argv[1]), ("after", sys.argv[2])):
    for line in open(path):
        for query in json.loads(line)["queries"]:
            p50s.setdefault(query["query"], {}).setdefault(label, []).append(query["p50Ms"])
medians = {}
print(f"{'query':<28} {'p50 ms before, each run':<26} {'p50 ms after, each run':<26}")
for name, runs in p50s.items():
    show = lambda label: " / ".join(f"{x:.2f}" for x in runs.get(label, [])) or "-"
    print(f"{name:<28} {show('before'):<26} {show('after'):<26}")
    medians[name] = {label: round(statistics.median(values), 3) for label, values in runs.items()}
print(json.dumps(medians))
EOF
