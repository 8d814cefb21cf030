"""Schemathesis hooks for fuzzing shop-local against openapi.yaml.

Loaded by local-stack/fuzz.sh through SCHEMATHESIS_HOOKS. Every request is
made as an admin (ADMIN_EMAILS on the server names FUZZ_ADMIN_EMAIL), so
the fuzzer reaches the handlers behind authentication, not just the 401 in
front of them. A fuzzed logout revokes the token: a 401 makes schemathesis
sign in again and retry. Profile updates are kept from changing the admin's
email or password, which would lock the fuzzer out for the rest of the run
(the black-box tests cover those changes); for the same reason the admin
never demotes or disables itself (the black-box tests cover the last-admin
rule and both changes). Orders name products seeded
here, with stock to spare, instead of random ids, so that orders are placed
and the stateful phase goes on to read, confirm, ship and cancel them; so
do half the cart lines (the other half keep their generated id and meet the
404), so that carts fill and checkouts place orders.
"""

import os
import zlib

import requests
import schemathesis

BASE_URL = os.environ["SHOP_FUZZ_URL"]
ADMIN_EMAIL = os.environ["FUZZ_ADMIN_EMAIL"]
ADMIN_PASSWORD = "fuzzing admin password"


def _sign_in():
    """The admin's session: (token, user id)."""
    credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = requests.post(f"{BASE_URL}/api/auth/login", json=credentials, timeout=30)
    if response.status_code == 401:
        credentials["name"] = "Fuzzing Admin"
        response = requests.post(f"{BASE_URL}/api/auth/register", json=credentials, timeout=30)
    response.raise_for_status()
    session = response.json()
    return session["token"], session["user"]["id"]


def _session_token():
    return _sign_in()[0]


def _seed_products(token):
    """One product per possible order line (lines naming one product are
    merged, and a merged quantity over 1000 is refused), each with the most
    stock allowed, in their own category."""
    headers = {"Authorization": f"Bearer {token}"}
    category = requests.post(f"{BASE_URL}/api/categories", json={"name": "Fuzzing"}, headers=headers, timeout=30)
    if category.status_code not in (201, 409):
        category.raise_for_status()
    ids = []
    for number in range(50):
        product = {"name": f"Fuzzing product {number}", "price": 9.99, "category": "Fuzzing", "stock": 1_000_000_000}
        response = requests.post(f"{BASE_URL}/api/products", json=product, headers=headers, timeout=30)
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


_TOKEN, ADMIN_ID = _sign_in()
PRODUCT_IDS = _seed_products(_TOKEN)


@schemathesis.auth(refresh_interval=300, retry_on=[401])
class AdminSession:
    def get(self, case, context):
        return _session_token()

    def set(self, case, token, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"


def _is(operation, method, path):
    return operation is not None and operation.method.upper() == method and operation.path == path


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if _is(operation, "PUT", "/api/auth/profile") and isinstance(body, dict):
        kept = {name: value for name, value in body.items() if name not in ("email", "password")}
        return kept or {"name": "Fuzzing Admin"}
    if _is(operation, "POST", "/api/orders") and isinstance(body, dict):
        # Deterministic (hypothesis replays cases): the line's position
        # picks the product; a userId, when sent, is the caller's own.
        lines = body.get("items")
        if isinstance(lines, list):
            for position, line in enumerate(lines):
                if isinstance(line, dict) and "productId" in line:
                    line["productId"] = PRODUCT_IDS[position % len(PRODUCT_IDS)]
        if "userId" in body:
            body["userId"] = ADMIN_ID
    return body


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    operation = context.operation
    if operation is not None and operation.path == "/api/cart/items/{productId}":
        generated = str(path_parameters.get("productId", ""))
        # Deterministic, as hypothesis replays cases: the generated id's
        # checksum picks a seeded product, or keeps the id.
        checksum = zlib.crc32(generated.encode())
        if checksum % 2 == 0:
            path_parameters["productId"] = PRODUCT_IDS[(checksum // 2) % len(PRODUCT_IDS)]
    return path_parameters


@schemathesis.hook
def before_call(context, case, **kwargs):
    """The fuzzing admin's own role and status stay as they are: a
    generated sequence that promoted someone else and then demoted the
    admin would leave the rest of the run signed in as a customer."""
    operation = case.operation
    own = (case.path_parameters or {}).get("id") == ADMIN_ID
    if own and _is(operation, "PUT", "/api/users/{id}/role") and isinstance(case.body, dict):
        case.body = {**case.body, "role": "admin"}
    if own and _is(operation, "PUT", "/api/users/{id}/status") and isinstance(case.body, dict):
        case.body = {**case.body, "status": "active"}
