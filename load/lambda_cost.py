#!/usr/bin/env python3
"""What a million requests cost, per route and for the load tester's mix.

Replays the mix of the load tester's `normal` profile (load/src: per 100
scenario iterations, 30 registrations; 40 browsing iterations of a listing
(one of six storefront queries, one of them `/api/categories`), a search
and a product page; 20 orders, each placed then read back; 10 health
checks; 20 shoppers, each browsing a listing, putting 1 to 4 products
in the cart, one time in four taking the last out again, reading the cart
and checking out, or one time in ten emptying it instead) through the
function binaries under AWS's Runtime Interface
Emulator (one warm instance per function), against DynamoDB Local and
Redis, with `DYNAMODB_CONSUMED_CAPACITY=on`: every DynamoDB call returns
the capacity it consumed and each request's metrics line (EMF) carries its
total. The emulator's REPORT line gives each invocation's billed duration.

A first pass of the mix warms the caches and is not counted; the second
is. Per route: read and write units, billed milliseconds at the template's
memory size, and dollars per million requests at the list prices below;
then the mix's weighted total.

Run by load/lambda-cost.sh. Arguments: <emulator> <binaries dir>
<shop-local> <env file>. COST_ITERATIONS (scenario iterations per pass,
default 500), COST_JSON (a file for the results).
"""

import json
import os
import random
import sys
import tempfile

from lambda_rie import REPORT, Emulator, api_event, clean_environment, start_shop_local, template_memory

ITERATIONS = int(os.environ.get("COST_ITERATIONS", "500"))
PRODUCTS = 100
ADMIN_EMAIL = "cost-admin@example.com"

# List prices, us-east-1, as published by AWS in November 2024 (after the
# DynamoDB on-demand price cut of 2024-11-01); not re-checked online from
# this machine. Free tiers are left out.
PRICES = {
    "date": "2024-11 (us-east-1 list prices)",
    "api_gateway_http_per_million": 1.00,  # first 300 million requests a month
    "lambda_requests_per_million": 0.20,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "dynamodb_read_units_per_million": 0.125,  # on-demand read request units
    "dynamodb_write_units_per_million": 0.625,  # on-demand write request units
}

# The load tester's scenarios (load/src/scenarios.rs) and weights
# (load/src/options.rs, the `normal` profile).
LISTINGS = ["category=Electronics", "limit=50", "", "category=Books&maxPrice=100", "inStock=true&minPrice=20", None]
SEARCHES = ["wireless", "laptop+stand", "garden", "novel", "charger+kit", "lamp"]
WEIGHTS = {"registration": 30, "browsing": 40, "ordering": 20, "health": 10, "shopping": 20}
CATEGORIES = ["Electronics", "Books", "Garden", "Home"]


def scenario_requests(scenario, fixtures, n, rng):
    """The (function, event) pairs of one iteration of `scenario`."""
    if scenario == "registration":
        body = {"email": f"cost-{os.getpid()}-{n}@example.com", "password": "correct horse battery", "name": "Load User"}
        return [("auth-register", api_event("POST", "/api/auth/register", "POST /api/auth/register", body=body))]
    if scenario == "browsing":
        listing = rng.choice(LISTINGS)
        first = (("categories-list", api_event("GET", "/api/categories", "GET /api/categories")) if listing is None else
                 ("products-list", api_event("GET", "/api/products", "GET /api/products", query=listing)))
        search = ("products-list", api_event("GET", "/api/products", "GET /api/products", query=f"q={rng.choice(SEARCHES)}"))
        product = rng.choice(fixtures["products"])
        page = ("products-get", api_event("GET", f"/api/products/{product}", "GET /api/products/{id}", {"id": product}))
        return [first, search, page]
    if scenario == "shopping":
        return shopping_requests(fixtures, rng)
    if scenario == "ordering":
        body = {"items": [{"productId": rng.choice(fixtures["products"]), "quantity": 1}]}
        return [("orders-create", api_event("POST", "/api/orders", "POST /api/orders", token=fixtures["customer"], body=body)),
                ("orders-get", None)]
    return [("health", api_event("GET", "/health", "GET /health"))]


def shopping_requests(fixtures, rng):
    """One shopper's visit, as the load tester's shopping scenario makes it."""
    token = fixtures["shopper"]
    listing = rng.choice([q for q in LISTINGS if q is not None])
    requests = [("products-list", api_event("GET", "/api/products", "GET /api/products", query=listing))]
    chosen = rng.sample(fixtures["products"], rng.randint(1, 4))
    for product in chosen:
        requests.append(("cart-items-put", api_event("PUT", f"/api/cart/items/{product}", "PUT /api/cart/items/{productId}",
                                                     {"productId": product}, token=token,
                                                     body={"quantity": rng.randint(1, 3)})))
    remove_one, abandon = rng.randrange(4) == 0, rng.randrange(10) == 0
    if remove_one and len(chosen) > 1:
        requests.append(("cart-items-delete", api_event("DELETE", f"/api/cart/items/{chosen[-1]}",
                                                        "DELETE /api/cart/items/{productId}", {"productId": chosen[-1]},
                                                        token=token)))
    if abandon:
        return requests + [("cart-clear", api_event("DELETE", "/api/cart", "DELETE /api/cart", token=token))]
    return requests + [("cart-get", api_event("GET", "/api/cart", "GET /api/cart", token=token)),
                       ("checkout", api_event("POST", "/api/checkout", "POST /api/checkout", token=token))]


def make_fixtures(api):
    admin = api.register(ADMIN_EMAIL)
    customer = api.register("cost-customer@example.com")
    shopper = api.register("cost-shopper@example.com")
    for name in CATEGORIES:
        api.call("POST", "/api/categories", {"name": name}, token=admin, expect=(201, 409))
    words = ["wireless", "laptop", "stand", "garden", "novel", "charger", "kit", "lamp", "desk", "chair"]
    products = []
    for i in range(PRODUCTS):
        body = {"name": f"{words[i % len(words)].title()} {words[(i // 3) % len(words)]} {i}",
                "description": f"A {words[(i * 7) % len(words)]} for the {words[(i * 3) % len(words)]}.",
                "price": ((i * 37) % 50_000 + 100) / 100.0, "category": CATEGORIES[i % len(CATEGORIES)],
                "stock": 1_000_000_000}
        products.append(api.call("POST", "/api/products", body, token=admin)["id"])
    return {"admin": admin, "customer": customer, "shopper": shopper, "products": products}


def units_of(lines, request_id):
    """(read units, write units) from the request's metrics line."""
    for line in lines:
        if request_id in line and '"_aws"' in line:
            document = json.loads(line)
            return document.get("ReadCapacityUnits", 0.0), document.get("WriteCapacityUnits", 0.0)
    return 0.0, 0.0


def run_pass(emulators, fixtures, rng, record):
    # Each run of 100 iterations holds every scenario by its weight, in an
    # order shuffled once (the same in every run).
    scenarios = [name for name, weight in WEIGHTS.items() for _ in range(weight)]
    random.Random(0).shuffle(scenarios)
    per_route = {}
    for n in range(ITERATIONS):
        scenario = scenarios[n % len(scenarios)]
        order_id = None
        for function, event in scenario_requests(scenario, fixtures, f"{record}-{n}", rng):
            if event is None:  # the order just placed, read back
                event = api_event("GET", f"/api/orders/{order_id}", "GET /api/orders/{id}", {"id": order_id},
                                  token=fixtures["customer"])
            emulator = emulators[function]
            request_id = json.loads(event)["requestContext"]["requestId"]
            start = len(emulator.lines)
            payload, _ = emulator.invoke(event)
            if function == "orders-create":
                order_id = json.loads(payload["body"])["id"]
            if not record:
                continue
            report = emulator.wait_for_line(REPORT, start=start)
            lines = emulator.output_since(start)
            read, write = units_of(lines, request_id)
            route = per_route.setdefault(function, {"requests": 0, "read": 0.0, "write": 0.0, "billed_ms": 0,
                                                    "statuses": {}})
            route["requests"] += 1
            route["read"] += read
            route["write"] += write
            route["billed_ms"] += int(report.group(3))
            status = str(payload.get("statusCode"))
            route["statuses"][status] = route["statuses"].get(status, 0) + 1
    return per_route


def dollars_per_million(read, write, billed_ms, memory_mb):
    gb_seconds = billed_ms / 1000 * memory_mb / 1024
    return (PRICES["api_gateway_http_per_million"] + PRICES["lambda_requests_per_million"]
            + gb_seconds * PRICES["lambda_arm64_per_gb_second"] * 1_000_000
            + read * PRICES["dynamodb_read_units_per_million"] + write * PRICES["dynamodb_write_units_per_million"])


def main():
    rie, binaries, shop_local, env_file = sys.argv[1:5]
    with open(env_file) as f:
        function_env = dict(line.strip().split("=", 1) for line in f if "=" in line)
    function_env["DYNAMODB_CONSUMED_CAPACITY"] = "on"
    function_env["METRICS"] = "emf"
    with tempfile.TemporaryDirectory() as workdir:
        server, api = start_shop_local(shop_local, dict(function_env, ADMIN_EMAILS=ADMIN_EMAIL, PATH=os.environ["PATH"]),
                                       workdir)
        try:
            fixtures = make_fixtures(api)
        finally:
            server.terminate()
            server.wait(timeout=10)
    memory = template_memory()
    functions = ["auth-register", "categories-list", "products-list", "products-get", "orders-create", "orders-get",
                 "health", "cart-items-put", "cart-items-delete", "cart-get", "cart-clear", "checkout"]
    emulators = {}
    try:
        for function in functions:
            emulators[function] = Emulator(rie, os.path.join(binaries, function),
                                           clean_environment(function_env, memory[function]))
        run_pass(emulators, fixtures, random.Random(1), record=False)
        per_route = run_pass(emulators, fixtures, random.Random(2), record=True)
    finally:
        for emulator in emulators.values():
            emulator.stop()
    total_requests = sum(route["requests"] for route in per_route.values())
    print(f"prices: {PRICES['date']}; {ITERATIONS} scenario iterations, {total_requests} requests counted")
    print("| route (function) | share of the mix | read units | write units | billed ms (memory) | $ per million |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    results, mix_cost = {}, 0.0
    for function in [f for f in functions if f in per_route]:
        route = per_route[function]
        n = route["requests"]
        read, write, billed = route["read"] / n, route["write"] / n, route["billed_ms"] / n
        cost = dollars_per_million(read, write, billed, memory[function])
        share = n / total_requests
        mix_cost += share * cost
        results[function] = {"requests": n, "share": share, "read_units": read, "write_units": write,
                             "billed_ms": billed, "memory_mb": memory[function], "dollars_per_million": cost,
                             "statuses": route["statuses"]}
        print(f"| `{function}` | {share * 100:.1f} % | {read:.2f} | {write:.2f} | {billed:.2f} ({memory[function]} MB) "
              f"| {cost:.2f} |")
    print(f"| **the mix** | 100 % | | | | **{mix_cost:.2f}** |")
    with open(os.environ.get("COST_JSON", "/dev/null"), "w") as out:
        json.dump({"prices": PRICES, "routes": results, "mix_dollars_per_million": mix_cost}, out, indent=2)


if __name__ == "__main__":
    main()
