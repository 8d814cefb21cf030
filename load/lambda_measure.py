#!/usr/bin/env python3
"""Measures every Lambda function binary as Lambda runs it (see lambda_rie.py).

For each function: the init phase as the emulator reports it (`INIT
REPORT`) and the cold start from the first invocation's request to its
answer (the emulator starts the process on that invocation, as Lambda
does), each the median of COLD fresh instances; then, in one instance,
WARM invocations in a row: the round trip's p50 and p99 (through the
emulator, as the Lambda service would see it), cached and uncached where
the route has a cache; and the process's RSS after them.

Every invocation is a real request: the fixtures (users, tokens, a
category, products, orders, subscriptions) are made through `shop-local`
against the same table first, so each function answers what it answers in
production (200/201/204), not a 401 or a 404.

Run by load/lambda-measure.sh. Arguments: <emulator> <binaries dir>
<shop-local> <env file> [function ...]. MEASURE_COLD (15), MEASURE_WARM
(200), MEASURE_JSON (a file for the results).
"""

import json
import os
import statistics
import sys
import tempfile

from lambda_rie import Emulator, api_event, clean_environment, start_shop_local, template_memory

COLD = int(os.environ.get("MEASURE_COLD", "15"))
WARM = int(os.environ.get("MEASURE_WARM", "200"))
# argon2 routes take ~30 ms a call; the webhook routes meet the
# 25-subscription cap.
ARGON2_WARM = min(WARM, 50)
SUBSCRIPTION_WARM = 8
ADMIN_EMAIL = "measure-admin@example.com"


class Fixtures:
    """What the requests refer to, made through shop-local."""

    def __init__(self, api):
        self.api = api
        self.admin = api.register(ADMIN_EMAIL)
        self.customer_email = "measure-customer@example.com"
        self.customer = api.register(self.customer_email)
        target = api.register("measure-target@example.com")
        self.target_id = api.call("GET", "/api/auth/profile", token=target)["user"]["id"]
        api.call("POST", "/api/categories", {"name": "Measure"}, token=self.admin, expect=(201, 409))
        count = 1 + WARM + COLD + WARM
        self.products = [self.product(i) for i in range(count)]
        # [0] is the one read again and again; [1 : 1 + WARM] are read once
        # each; the rest are deleted one per call.
        self.deletable = self.products[1 + WARM:]
        orders = COLD + WARM
        self.orders = [self.order() for _ in range(orders)]
        self.logout_tokens = [api.login(self.customer_email) for _ in range(COLD + ARGON2_WARM)]
        url = {"url": "http://127.0.0.1:9/hook", "events": ["order.placed"]}
        self.webhook = api.call("POST", "/api/webhooks", url, token=self.admin)["id"]
        self.deletable_webhooks = [api.call("POST", "/api/webhooks", url, token=self.admin)["id"]
                                   for _ in range(COLD + SUBSCRIPTION_WARM)]

    def product(self, i):
        body = {"name": f"Measure product {i}", "description": "A thing to measure with.", "price": 10 + i % 90,
                "category": "Measure", "stock": 1_000_000_000}
        return self.api.call("POST", "/api/products", body, token=self.admin)["id"]

    def order(self):
        body = {"items": [{"productId": self.products[0], "quantity": 1}]}
        return self.api.call("POST", "/api/orders", body, token=self.customer)["id"]


# Short, for the table below.
http = api_event


def plans(fx):
    """function -> {variant: (calls, event of call i)}; call 0 is the cold one."""
    product = fx.products[0]
    order = fx.orders[0]
    hook = fx.webhook
    one = lambda event: {"warm": (WARM, lambda i: event)}
    return {
        "health": one(http("GET", "/health", "GET /health")),
        "auth-register": {"warm": (ARGON2_WARM, lambda i: http(
            "POST", "/api/auth/register", "POST /api/auth/register",
            body={"email": f"measure-{os.getpid()}-{i}-{len(fx.products)}@example.com",
                  "password": "correct horse battery", "name": "Measure"}))},
        "auth-login": {"warm": (ARGON2_WARM, lambda i: http(
            "POST", "/api/auth/login", "POST /api/auth/login",
            body={"email": fx.customer_email, "password": "correct horse battery"}))},
        "auth-profile-get": one(http("GET", "/api/auth/profile", "GET /api/auth/profile", token=fx.customer)),
        "auth-profile-update": {"warm": (WARM, lambda i: http(
            "PUT", "/api/auth/profile", "PUT /api/auth/profile", token=fx.customer, body={"name": f"Measure {i}"}))},
        "auth-logout": {"warm": (ARGON2_WARM, lambda i: http(
            "POST", "/api/auth/logout", "POST /api/auth/logout", token=fx.logout_tokens[i]))},
        "categories-list": one(http("GET", "/api/categories", "GET /api/categories")),
        "categories-create": {"warm": (WARM, lambda i: http(
            "POST", "/api/categories", "POST /api/categories", token=fx.admin,
            body={"name": f"Measure {os.getpid()} {i}"}))},
        "products-list": {
            "cached": (WARM, lambda i: http("GET", "/api/products", "GET /api/products", query="category=Measure")),
            "uncached": (WARM, lambda i: http("GET", "/api/products", "GET /api/products",
                                              query=f"category=Measure&maxPrice={1000 + i}")),
        },
        "products-get": {
            "cached": (WARM, lambda i: http("GET", f"/api/products/{product}", "GET /api/products/{id}",
                                            {"id": product})),
            "uncached": (WARM, lambda i: http("GET", f"/api/products/{fx.products[1 + i]}",
                                              "GET /api/products/{id}", {"id": fx.products[1 + i]})),
        },
        "products-create": {"warm": (WARM, lambda i: http(
            "POST", "/api/products", "POST /api/products", token=fx.admin,
            body={"name": f"Created {i}", "price": 12.5, "category": "Measure", "stock": 5}))},
        "products-update": {"warm": (WARM, lambda i: http(
            "PUT", f"/api/products/{product}", "PUT /api/products/{id}", {"id": product}, token=fx.admin,
            body={"price": 10 + i % 50}))},
        "products-delete": {"warm": (WARM, lambda i: http(
            "DELETE", f"/api/products/{fx.deletable[i]}", "DELETE /api/products/{id}", {"id": fx.deletable[i]},
            token=fx.admin))},
        "orders-create": {"warm": (WARM, lambda i: http(
            "POST", "/api/orders", "POST /api/orders", token=fx.customer,
            body={"items": [{"productId": product, "quantity": 1}]}))},
        "orders-list": one(http("GET", "/api/orders", "GET /api/orders", token=fx.customer)),
        "orders-get": one(http("GET", f"/api/orders/{order}", "GET /api/orders/{id}", {"id": order}, token=fx.customer)),
        "orders-items": one(http("GET", f"/api/orders/{order}/items", "GET /api/orders/{id}/items", {"id": order},
                                 token=fx.customer)),
        "orders-update-status": {"warm": (WARM, lambda i: http(
            "PUT", f"/api/orders/{fx.orders[i]}/status", "PUT /api/orders/{id}/status", {"id": fx.orders[i]},
            token=fx.customer, body={"status": "cancelled"}))},
        "users-list": one(http("GET", "/api/users", "GET /api/users", token=fx.admin)),
        "users-get": one(http("GET", f"/api/users/{fx.target_id}", "GET /api/users/{id}", {"id": fx.target_id},
                              token=fx.admin)),
        "users-update-role": {"warm": (WARM, lambda i: http(
            "PUT", f"/api/users/{fx.target_id}/role", "PUT /api/users/{id}/role", {"id": fx.target_id},
            token=fx.admin, body={"role": "customer"}))},
        "users-update-status": {"warm": (WARM, lambda i: http(
            "PUT", f"/api/users/{fx.target_id}/status", "PUT /api/users/{id}/status", {"id": fx.target_id},
            token=fx.admin, body={"status": "disabled" if i % 2 == 0 else "active"}))},
        "events-list": one(http("GET", "/api/events", "GET /api/events", token=fx.admin)),
        "webhooks-create": {"warm": (SUBSCRIPTION_WARM, lambda i: http(
            "POST", "/api/webhooks", "POST /api/webhooks", token=fx.admin,
            body={"url": "http://127.0.0.1:9/hook", "events": ["order.placed"]}))},
        "webhooks-list": one(http("GET", "/api/webhooks", "GET /api/webhooks", token=fx.admin)),
        "webhooks-get": one(http("GET", f"/api/webhooks/{hook}", "GET /api/webhooks/{id}", {"id": hook},
                                 token=fx.admin)),
        "webhooks-delete": {"warm": (SUBSCRIPTION_WARM, lambda i: http(
            "DELETE", f"/api/webhooks/{fx.deletable_webhooks[i]}", "DELETE /api/webhooks/{id}",
            {"id": fx.deletable_webhooks[i]}, token=fx.admin))},
        "webhooks-rotate-secret": one(http("POST", f"/api/webhooks/{hook}/rotate-secret",
                                           "POST /api/webhooks/{id}/rotate-secret", {"id": hook}, token=fx.admin)),
        "webhooks-deliveries": one(http("GET", f"/api/webhooks/{hook}/deliveries", "GET /api/webhooks/{id}/deliveries",
                                        {"id": hook}, token=fx.admin)),
        "docs-page": one(http("GET", "/docs", "GET /docs")),
        "openapi-document": one(http("GET", "/openapi.yaml", "GET /openapi.yaml")),
    }


def sample(function):
    """A worker's invocation: its sample under events/."""
    with open(f"events/{function}.json", "rb") as f:
        event = f.read()
    return {"warm": (WARM, lambda i: event)}


def answer(payload):
    if isinstance(payload, dict) and "statusCode" in payload:
        return str(payload["statusCode"])
    return json.dumps(payload)[:60]


def handler_times(lines):
    """From the function's own log lines: the handler's latency, the part
    spent waiting for the store, and the rest (p50s, ms). (The cache's
    waits overlap the rate-limit counter's, so they are not subtracted.)"""
    logged = []
    for line in lines:
        if '"request completed"' in line:
            try:
                logged.append(json.loads(line))
            except ValueError:
                pass
    if not logged:
        return {}
    field = lambda name: [float(entry.get(name, 0)) for entry in logged]
    latency, store = field("latency_ms"), field("store_ms")
    return {
        "handler_p50_ms": round(percentile(latency, 50), 3), "store_p50_ms": round(percentile(store, 50), 3),
        "beyond_store_p50_ms": round(percentile([l - s for l, s in zip(latency, store)], 50), 3),
    }


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(rie, binary, env, variants):
    """Init and cold start over COLD fresh instances, then the variants'
    warm calls in one instance."""
    inits, colds, answers = [], [], set()
    calls = {name: 0 for name in variants}
    first_variant = next(iter(variants))
    emulator = None
    for round_ in range(COLD):
        emulator = Emulator(rie, binary, env)
        try:
            payload, seconds = emulator.invoke(variants[first_variant][1](calls[first_variant]))
            calls[first_variant] += 1
            colds.append(seconds * 1000)
            inits.append(emulator.init_ms())
            answers.add(answer(payload))
        finally:
            if round_ < COLD - 1:
                emulator.stop()
    warm = {}
    try:
        for name, (count, event) in variants.items():
            times, statuses = [], {}
            first_line = len(emulator.output_since(0))
            for _ in range(count):
                payload, seconds = emulator.invoke(event(calls[name]))
                calls[name] += 1
                times.append(seconds * 1000)
                statuses[answer(payload)] = statuses.get(answer(payload), 0) + 1
            warm[name] = {"calls": count, "p50_ms": round(percentile(times, 50), 2),
                          "p99_ms": round(percentile(times, 99), 2), "answers": statuses,
                          **handler_times(emulator.output_since(first_line))}
        rss, peak = emulator.rss_kib()
        output = emulator.output_since(0)
    finally:
        emulator.stop()
    return {
        "init_ms": round(statistics.median(inits), 2), "init_ms_all": [round(x, 2) for x in inits],
        "cold_start_ms": round(statistics.median(colds), 2), "cold_answers": sorted(answers), "warm": warm,
        "rss_mib": round(rss / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
        "cache_hits": sum(line.count('"CacheHits"') for line in output),
        "cache_misses": sum(line.count('"CacheMisses"') for line in output),
    }


def main():
    rie, binaries, shop_local, env_file = sys.argv[1:5]
    with open(env_file) as f:
        function_env = dict(line.strip().split("=", 1) for line in f if "=" in line)
    workers = {"events-publish", "events-record", "events-invalidate-cache", "orders-expire", "webhooks-fanout",
               "webhooks-deliver"}
    with tempfile.TemporaryDirectory() as workdir:
        server, api = start_shop_local(shop_local, dict(function_env, ADMIN_EMAILS=ADMIN_EMAIL, PATH=os.environ["PATH"],
                                                        LOGIN_FAILURES_MAX="1000000000"), workdir)
        try:
            fixtures = Fixtures(api)
        finally:
            server.terminate()
            server.wait(timeout=10)
    every = plans(fixtures)
    # Subscriptions are deleted before more are created: at most 25 exist.
    functions = sys.argv[5:] or sorted(every, key=lambda f: (f == "webhooks-create", f)) + sorted(workers)
    memory = template_memory()
    print(f"| function | init (median of {COLD}) | cold start (median) | warm p50 / p99 | in the handler: p50, of it beyond "
          "the store | RSS after | answers |")
    print("| --- | ---: | ---: | --- | --- | ---: | --- |", flush=True)
    results = {}
    for function in functions:
        variants = sample(function) if function in workers else every[function]
        env = clean_environment(function_env, memory[function])
        result = measure(rie, os.path.join(binaries, function), env, variants)
        results[function] = result
        label = lambda name: "" if name == "warm" else f"{name}: "
        warm = "; ".join(f"{label(name)}{v['p50_ms']:.2f} / {v['p99_ms']:.2f} ms" for name, v in result["warm"].items())
        handler = "; ".join(f"{label(name)}{v['handler_p50_ms']:.2f}, {v['beyond_store_p50_ms']:.2f} ms"
                            for name, v in result["warm"].items() if "handler_p50_ms" in v)
        answers = sorted({a for v in result["warm"].values() for a in v["answers"]} | set(result["cold_answers"]))
        print(f"| `{function}` | {result['init_ms']:.2f} ms | {result['cold_start_ms']:.2f} ms | {warm} | {handler or '-'} "
              f"| {result['rss_mib']:.1f} MiB | {', '.join(answers)} |", flush=True)
    with open(os.environ.get("MEASURE_JSON", "/dev/null"), "w") as out:
        json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
