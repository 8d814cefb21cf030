#!/usr/bin/env python3
"""Measures each Lambda function binary as Lambda would run it.

For every function: the release binary's size; the cold start, from
spawning the process to the first invocation's response, through cargo
lambda's Runtime API emulator (`cargo lambda watch --only-lambda-apis`),
which includes the function's init (config, clients, the warm-up pings to
DynamoDB Local and Redis); and the RSS after 1000 warm invocations.

Run by load/lambda-measure.sh, which starts DynamoDB Local and Redis and
builds the binaries. Arguments: <cargo-lambda> <binaries dir> <env file>
[function ...].
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

DEFAULT_FUNCTIONS = ["health", "auth-login", "products-list", "orders-get"]
WARM_INVOCATIONS = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def invoke(port, event):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/_/invocations", data=event, method="POST",
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def measure(cargo_lambda, binaries, base_env, function):
    port = free_port()
    emulator = subprocess.Popen(
        [cargo_lambda, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        env = dict(base_env, AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{port}/.rt", AWS_LAMBDA_FUNCTION_NAME="_",
                   AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256")
        with open(f"events/{function}.json", "rb") as f:
            event = f.read()
        started = time.perf_counter()
        process = subprocess.Popen([os.path.join(binaries, function)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = invoke(port, event)
        cold_ms = (time.perf_counter() - started) * 1000
        warm_started = time.perf_counter()
        statuses = {}
        for _ in range(WARM_INVOCATIONS):
            status = invoke(port, event)["statusCode"]
            statuses[status] = statuses.get(status, 0) + 1
        warm_ms = (time.perf_counter() - warm_started) * 1000 / WARM_INVOCATIONS
        rss, peak = rss_kib(process.pid)
        process.terminate()
        process.wait(timeout=10)
        return {
            "function": function, "bytes": os.path.getsize(os.path.join(binaries, function)),
            "cold_start_ms": round(cold_ms, 1), "first_status": first["statusCode"],
            "warm_invoke_ms": round(warm_ms, 3), "statuses": statuses,
            "rss_mib": round(rss / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
        }
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def main():
    cargo_lambda, binaries, env_file = sys.argv[1:4]
    functions = sys.argv[4:] or DEFAULT_FUNCTIONS
    base_env = dict(os.environ)
    with open(env_file) as f:
        base_env.update(line.strip().split("=", 1) for line in f if "=" in line)
    print(f"{'function':<18} {'binary':>10} {'cold start':>11} {'warm invoke':>12} {'RSS after 1000':>15} {'peak RSS':>9} statuses")
    results = []
    for function in functions:
        result = measure(cargo_lambda, binaries, base_env, function)
        results.append(result)
        print(f"{function:<18} {result['bytes'] / 1_000_000:>8.2f}MB {result['cold_start_ms']:>9.1f}ms "
              f"{result['warm_invoke_ms']:>10.3f}ms {result['rss_mib']:>12.1f}MiB {result['peak_rss_mib']:>6.1f}MiB  "
              f"first {result['first_status']}, then {result['statuses']}")
    with open(os.environ.get("MEASURE_JSON", "/dev/null"), "w") as out:
        json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
