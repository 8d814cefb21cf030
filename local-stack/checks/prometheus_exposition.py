"""Checks shop-local's GET /metrics with Prometheus's own Python parser.

Drives a few requests (health, a listing, a registration, a failed login,
an unknown route), then parses /metrics with prometheus_client's text
parser and checks what it reads: requests by route and status, a latency
histogram per route whose buckets add up, and the business counters.
Run by local-stack/test-all.sh against a fresh shop-local; SHOP_URL names it.
Prints 'N passed, N failed' and exits non-zero on a failure.
"""

import os
import sys
import uuid

import requests
from prometheus_client.parser import text_string_to_metric_families
from report import report

BASE = os.environ["SHOP_URL"]
checks = []


def check(name, condition, detail=""):
    checks.append((name, bool(condition), detail))


def samples(families, name):
    family = families.get(name)
    return family.samples if family else []


def main():
    requests.get(f"{BASE}/health", timeout=10).raise_for_status()
    requests.get(f"{BASE}/api/products?limit=5", timeout=10).raise_for_status()
    email = f"metrics-{uuid.uuid4().hex}@example.com"
    body = {"email": email, "password": "correct horse battery", "name": "Metrics"}
    requests.post(f"{BASE}/api/auth/register", json=body, timeout=30).raise_for_status()
    wrong = requests.post(f"{BASE}/api/auth/login", json={"email": email, "password": "wrong password"}, timeout=30)
    check("a wrong password is refused", wrong.status_code == 401, wrong.status_code)

    response = requests.get(f"{BASE}/metrics", timeout=10)
    check("/metrics answers 200", response.status_code == 200, response.status_code)
    check("in the text format", response.headers["content-type"].startswith("text/plain; version=0.0.4"))
    families = {family.name: family for family in text_string_to_metric_families(response.text)}

    requests_total = samples(families, "shop_http_requests")
    check("requests are a counter", families["shop_http_requests"].type == "counter")
    health = [s for s in requests_total if s.labels == {"route": "health", "method": "GET", "status": "200"}]
    check("GET /health counted once", health and health[0].value == 1, health)
    refused = [s for s in requests_total if s.labels.get("route") == "auth-login" and s.labels.get("status") == "401"]
    check("the refused login counted by status", refused and refused[0].value == 1, refused)

    latency = families.get("shop_http_request_duration_seconds")
    check("latency is a histogram", latency is not None and latency.type == "histogram")
    for route in ("health", "products-list", "auth-register", "auth-login"):
        mine = [s for s in latency.samples if s.labels.get("route") == route]
        buckets = [s for s in mine if s.name.endswith("_bucket")]
        counts = [s.value for s in buckets]
        count = [s.value for s in mine if s.name.endswith("_count")]
        check(f"{route}: cumulative buckets", counts == sorted(counts) and len(counts) == 13, counts)
        check(f"{route}: +Inf equals the count", buckets and count and buckets[-1].labels["le"] == "+Inf"
              and buckets[-1].value == count[0], (buckets[-1:], count))

    for name, at_least in (("shop_users_registered", 1), ("shop_logins_failed", 1), ("shop_cache_misses", 1),
                           ("shop_orders_placed", 0), ("shop_order_value", 0)):
        values = [s.value for s in samples(families, name)]
        check(f"{name} >= {at_least}", values and values[0] >= at_least, values)

    return report("prometheus_exposition", checks)


if __name__ == "__main__":
    sys.exit(main())
