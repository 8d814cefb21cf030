#!/usr/bin/env bash
# What an uncached search costs as the catalog grows: `search-bench` (the
# fast build, through the store port, no cache) on the embedded store and
# on DynamoDB Local for each catalog size. Each DynamoDB size gets a fresh
# DynamoDB Local on a free loopback port, stopped by PID afterwards, its
# database in a file on tmpfs (/dev/shm when there is one): -inMemory
# takes about 4.5 KB of memory an item, too much for 2.7 million, and a
# database on disk writes at half the speed. The reports go to
# load/results/search-<store>-<size>.json; the last lines are p95 and read
# units per query kind, one column per size.
# Usage: load/search-bench.sh [SIZE...]   (default 1000 10000 100000)
# Seeding 100,000 products and their 2.6 million index entries into
# DynamoDB Local takes about 25 minutes here; the embedded store, 3.
set -euo pipefail
# shellcheck source=../local-stack/lib.sh
source "$(dirname "$0")/../local-stack/lib.sh"
cd "$REPO_DIR"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000)
RUNS=${RUNS:-30}
ensure_dynamodb_local
cargo build --quiet --profile fast -p local-stack --bin search-bench
mkdir -p load/results
DYNAMODB_PID=
DATA=$(mktemp -d -p "$([ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
trap 'stop_pid "$DYNAMODB_PID"; rm -rf "$DATA"' EXIT

reports=()
for size in "${SIZES[@]}"; do
    target/fast/search-bench --store embedded --catalog "$size" --runs "$RUNS" \
        --json "load/results/search-embedded-$size.json"
    reports+=("load/results/search-embedded-$size.json")
    port=$(free_port)
    DYNAMODB_PID=$(start_dynamodb "$port" "$DATA/$size")
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
        AWS_REGION=us-east-1 target/fast/search-bench --store dynamodb --catalog "$size" --runs "$RUNS" \
        --json "load/results/search-dynamodb-$size.json"
    stop_pid "$DYNAMODB_PID"
    DYNAMODB_PID=
    rm -rf "${DATA:?}/$size"
    reports+=("load/results/search-dynamodb-$size.json")
done

python3 - "${reports[@]}" <<'PY'
import json, sys
reports = [json.load(open(path)) for path in sys.argv[1:]]
for store in ("embedded", "dynamodb"):
    mine = [r for r in reports if r["store"] == store]
    if not mine:
        continue
    sizes = [r["catalog"] for r in mine]
    units = store == "dynamodb"
    head = "".join(f"{size:>12,}" for size in sizes)
    print(f"\n{store}: p95 ms{' / read units' if units else ''} per uncached page, by catalog size")
    print(f"{'query':<28}{head}")
    for i, query in enumerate(mine[0]["queries"]):
        cells = []
        for r in mine:
            q = r["queries"][i]
            cells.append(f"{q['p95Ms']:.1f} / {q['readUnits']:.1f}" if units else f"{q['p95Ms']:.2f}")
        print(f"{query['query']:<28}" + "".join(f"{c:>12}" for c in cells))
PY
