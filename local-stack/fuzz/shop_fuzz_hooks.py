"""Schemathesis hooks for fuzzing shop-local against openapi.yaml.

Loaded by local-stack/fuzz.sh through SCHEMATHESIS_HOOKS. Every request is
made as an admin (ADMIN_EMAILS on the server names FUZZ_ADMIN_EMAIL), so
the fuzzer reaches the handlers behind authentication, not just the 401 in
front of them. A fuzzed logout revokes the token: a 401 makes schemathesis
sign in again and retry. Profile updates are kept from changing the admin's
email or password, which would lock the fuzzer out for the rest of the run
(the black-box tests cover those changes).
"""

import os

import requests
import schemathesis

BASE_URL = os.environ["SHOP_FUZZ_URL"]
ADMIN_EMAIL = os.environ["FUZZ_ADMIN_EMAIL"]
ADMIN_PASSWORD = "fuzzing admin password"


def _session_token():
    credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = requests.post(f"{BASE_URL}/api/auth/login", json=credentials, timeout=30)
    if response.status_code == 401:
        credentials["name"] = "Fuzzing Admin"
        response = requests.post(f"{BASE_URL}/api/auth/register", json=credentials, timeout=30)
    response.raise_for_status()
    return response.json()["token"]


@schemathesis.auth(refresh_interval=300, retry_on=[401])
class AdminSession:
    def get(self, case, context):
        return _session_token()

    def set(self, case, token, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    is_profile_update = operation is not None and operation.method.upper() == "PUT" and operation.path == "/api/auth/profile"
    if is_profile_update and isinstance(body, dict):
        kept = {name: value for name, value in body.items() if name not in ("email", "password")}
        return kept or {"name": "Fuzzing Admin"}
    return body
