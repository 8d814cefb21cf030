#!/usr/bin/env bash
# Throughput benchmark against the embedded default (fast profile): 50
# concurrent clients on GET /api/products (a mix of filters), GET
# /api/products/{id} (with the cache hit ratio the server counted), and
# POST /api/orders. Server and wrk share this machine; the server gets a
# fresh data folder and a free loopback port, and is stopped at the end.
#
#   load/bench.sh [seconds per run, default 20] [products, default 500]
set -euo pipefail
cd "$(dirname "$0")/.."
source local-stack/lib.sh

DURATION="${1:-20}"
PRODUCTS="${2:-500}"
command -v wrk >/dev/null 2>&1 || apt_install wrk
cargo build --profile fast -p local-stack --quiet

WORK="$(mktemp -d)"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
SERVER=$(start_load_server "$PORT" "$WORK")
trap 'stop_pid $SERVER; rm -rf "$WORK"' EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
TOKEN=$(curl -sf "$BASE/api/auth/register" -H 'content-type: application/json' \
    -d '{"email":"load-admin@example.com","password":"correct horse battery","name":"Bench"}' | json '["token"]')
for category in Electronics Books Garden; do
    curl -sf "$BASE/api/categories" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d "{\"name\":\"$category\"}" >/dev/null
done
python3 - "$BASE" "$TOKEN" "$PRODUCTS" "$WORK/ids" <<'PY'
import json, random, sys, urllib.request
base, token, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
words = ["wireless", "laptop", "cable", "garden", "novel", "lamp", "stand", "charger", "guide", "kit"]
random.seed(7)
# One product in ten is sold out (for the inStock filter); the rest have
# enough stock that the order benchmark never runs out.
with open(out, "w") as ids, open(out + "-in-stock", "w") as in_stock:
    for i in range(count):
        body = {"name": f"{random.choice(words).title()} {random.choice(words)} {i}",
                "description": " ".join(random.choices(words, k=8)),
                "price": round(random.uniform(1, 500), 2),
                "category": random.choice(["Electronics", "Books", "Garden"]),
                "stock": 0 if i % 10 == 0 else 1_000_000}
        request = urllib.request.Request(f"{base}/api/products", json.dumps(body).encode(),
            {"content-type": "application/json", "authorization": f"Bearer {token}"})
        product_id = json.load(urllib.request.urlopen(request))["id"]
        ids.write(product_id + "\n")
        if body["stock"]:
            in_stock.write(product_id + "\n")
PY

echo "== $PRODUCTS products; wrk -t2 -c50 -d${DURATION}s, fast profile (opt-level 3), embedded store, in-process cache"
echo "-- GET /api/products (8 filter mixes, first page of 20 or 50)"
wrk -t2 -c50 -d"${DURATION}s" --latency -s load/wrk/product-lists.lua "$BASE" | grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors"
echo "-- GET /api/products/{id} (random of $PRODUCTS)"
PRODUCT_IDS="$WORK/ids" wrk -t2 -c50 -d"${DURATION}s" --latency -s load/wrk/product-ids.lua "$BASE" \
    | grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors"
curl -sf "$BASE/health" | python3 -c '
import json, sys
stats = json.load(sys.stdin)["cacheStats"]
hits, misses = stats["hits"], stats["misses"]
print(f"-- cache: {hits} hits, {misses} misses, hit ratio {hits / max(hits + misses, 1):.1%}")'
echo "-- POST /api/orders (1-2 lines each, one customer)"
CUSTOMER=$(curl -sf "$BASE/api/auth/register" -H 'content-type: application/json' \
    -d '{"email":"bench-customer@example.com","password":"correct horse battery","name":"Buyer"}' | json '["token"]')
TOKEN="$CUSTOMER" PRODUCT_IDS="$WORK/ids-in-stock" wrk -t2 -c50 -d"${DURATION}s" --latency -s load/wrk/orders.lua "$BASE" \
    | grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors"
echo "-- server RSS: $(ps -o rss= -p "$SERVER" | awk '{printf "%.0f MB", $1/1024}')"
