"""Cold and warm latency of every route through `sam local start-api`.

For each route of the route table (read from openapi.yaml's operations),
the first request after start-api came up is its function's cold start
(the container is warm, the function's init runs on that first request),
then N more give the warm p50 and p99. Run by load/sam-local-measure.sh
against a fresh start; it prints one Markdown table.

Usage: python sam_local_measure.py BASE_URL ADMIN_ENV_FILE SHOP_LOCAL N
"""

import os
import subprocess
import sys
import time
import uuid

import requests

BASE, ADMIN_ENV, SHOP_LOCAL, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
PASSWORD = "measure password 123"
session = requests.Session()


def call(method, path, token=None, body=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    response = session.request(method, BASE + path, json=body, headers=headers, timeout=60)
    return (time.perf_counter() - started) * 1000, response


def sign_up(email, admin=False):
    call("POST", "/api/auth/register", body={"email": email, "password": PASSWORD, "name": "Measure"})
    if admin:
        with open(ADMIN_ENV) as admin_env:
            env = dict(line.split("=", 1) for line in admin_env.read().split())
        env["PATH"] = os.environ["PATH"]
        subprocess.run([SHOP_LOCAL, "admin", "grant", email], env=env, check=True, capture_output=True)
    return call("POST", "/api/auth/login", body={"email": email, "password": PASSWORD})[1].json()["token"]


run = uuid.uuid4().hex[:8]
results = {}


def measure_each(name, requests_):
    """The first of `requests_` (method, path, token, body) cold, the rest warm."""
    timed = []
    for method, path, token, body in requests_:
        elapsed, response = call(method, path, token, body)
        assert response.status_code < 400, (name, response.status_code, response.text)
        timed.append((elapsed, response))
    cold, first = timed[0]
    warm = sorted(elapsed for elapsed, _ in timed[1:])
    results[name] = (cold, warm[len(warm) // 2], warm[min(len(warm) - 1, int(len(warm) * 0.99))], timed[-1][1].status_code)
    return first


def measure(name, method, path, token=None, body=None, warm_body=None, count=N):
    bodies = [body] + [warm_body(i) if warm_body else body for i in range(count)]
    return measure_each(name, [(method, path, token, b) for b in bodies])


# Health first: the first call of all also pays for nothing else.
measure("health", "GET", "/health")
admin = sign_up(f"admin-{run}@example.com", admin=True)
customer = sign_up(f"buyer-{run}@example.com")
measure("auth-register", "POST", "/api/auth/register",
        body={"email": f"cold-{run}@example.com", "password": PASSWORD, "name": "Cold"},
        warm_body=lambda i: {"email": f"warm-{run}-{i}@example.com", "password": PASSWORD, "name": "Warm"})
measure("auth-login", "POST", "/api/auth/login", body={"email": f"buyer-{run}@example.com", "password": PASSWORD})
measure("auth-profile-get", "GET", "/api/auth/profile", customer)
measure("auth-profile-update", "PUT", "/api/auth/profile", customer, body={"name": "Measured"})
measure("categories-create", "POST", "/api/categories", admin, body={"name": f"Cold {run}"},
        warm_body=lambda i: {"name": f"Warm {run} {i}"})
measure("categories-list", "GET", "/api/categories")
created = call("POST", "/api/products", admin, {"name": "Lamp", "price": 5, "category": f"Cold {run}", "stock": 1000000})[1].json()
product = created["id"]
measure("products-create", "POST", "/api/products", admin,
                                 body={"name": "Cold lamp", "price": 5, "category": f"Cold {run}", "stock": 10})
measure("products-list", "GET", "/api/products?limit=20")
measure("products-get", "GET", f"/api/products/{product}")
measure("products-update", "PUT", f"/api/products/{product}", admin, body={"price": 6})
order_body = {"items": [{"productId": product, "quantity": 1}]}
order = measure("orders-create", "POST", "/api/orders", customer, body=order_body).json()["id"]
measure("orders-list", "GET", "/api/orders", customer)
measure("orders-get", "GET", f"/api/orders/{order}", customer)
measure("orders-items", "GET", f"/api/orders/{order}/items", customer)
# Each status change needs an order of its own: cancel a fresh one each time.
fresh = [call("POST", "/api/orders", customer, order_body)[1].json()["id"] for _ in range(N + 1)]
measure_each("orders-update-status", [("PUT", f"/api/orders/{o}/status", customer, {"status": "cancelled"}) for o in fresh])
measure("users-list", "GET", "/api/users", admin)
buyer_id = call("GET", "/api/auth/profile", customer)[1].json()["user"]["id"]
measure("users-get", "GET", f"/api/users/{buyer_id}", admin)
measure("users-update-role", "PUT", f"/api/users/{buyer_id}/role", admin, body={"role": "customer"})
measure("users-update-status", "PUT", f"/api/users/{buyer_id}/status", admin, body={"status": "active"})
measure("events-list", "GET", "/api/events", admin)
hook = call("POST", "/api/webhooks", admin, {"url": "https://93.184.215.14/hook", "events": ["*"]})[1].json()["id"]
# At most 25 subscriptions: 1 + 1 + 20.
measure("webhooks-create", "POST", "/api/webhooks", admin, body={"url": "https://93.184.215.14/cold", "events": ["*"]},
        warm_body=lambda i: {"url": "https://93.184.215.14/warm", "events": ["order.placed"]}, count=min(N, 20))
measure("webhooks-list", "GET", "/api/webhooks", admin)
measure("webhooks-get", "GET", f"/api/webhooks/{hook}", admin)
measure("webhooks-rotate-secret", "POST", f"/api/webhooks/{hook}/rotate-secret", admin)
measure("webhooks-deliveries", "GET", f"/api/webhooks/{hook}/deliveries", admin)
hooks = [hook] + [h["id"] for h in call("GET", "/api/webhooks?limit=100", admin)[1].json()["items"] if h["id"] != hook]
measure_each("webhooks-delete", [("DELETE", f"/api/webhooks/{h}", admin, None) for h in hooks])
doomed = [product] + [call("POST", "/api/products", admin, {"name": f"Doomed {i}", "price": 1, "category": f"Cold {run}", "stock": 1})[1].json()["id"] for i in range(N)]
measure_each("products-delete", [("DELETE", f"/api/products/{p}", admin, None) for p in doomed])
measure("docs-page", "GET", "/docs")
measure("openapi-document", "GET", "/openapi.yaml")
# Each logout revokes its own token.
tokens = [call("POST", "/api/auth/login", body={"email": f"buyer-{run}@example.com", "password": PASSWORD})[1].json()["token"] for _ in range(N + 1)]
measure_each("auth-logout", [("POST", "/api/auth/logout", t, None) for t in tokens])

print("| function | first request (cold) | warm p50 | warm p99 | warm answer |")
print("| --- | ---: | ---: | ---: | --- |")
for name, (cold, p50, p99, status) in results.items():
    print(f"| `{name}` | {cold:.0f} ms | {p50:.1f} ms | {p99:.1f} ms | {status} |")
