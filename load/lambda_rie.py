"""Runs function binaries as Lambda runs them, for the measuring scripts.

AWS's Runtime Interface Emulator (the `aws-lambda-rie-x86_64` binary that
SAM CLI's PyPI wheel carries) starts a `bootstrap` on the first invocation
exactly as the Lambda service does (on-demand init), serves the Runtime
API to it, and logs what Lambda reports: `INIT REPORT(durationMs: ...)`
for the init phase (from the process's start to its first call for the
next invocation) and a `REPORT` line per invocation with its duration and
billed duration.

The process gets a clean environment: the function's own variables, PATH
and HOME, nothing of the caller's shell (certificate variables, proxies,
AWS profiles would each change what init does).

Also here: API Gateway (HTTP API, payload 2.0) events built from a method
and a path, and the fixtures the measurements need, made through
`shop-local` against the same table (users and tokens, a category,
products, orders, webhook subscriptions).
"""

import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

INIT_REPORT = re.compile(r"INIT REPORT\(.*?durationMs: ([0-9.]+)")
REPORT = re.compile(r"^REPORT RequestId: (\S+)\s+(?:Init Duration: [0-9.]+ ms\s+)?Duration: ([0-9.]+) ms\s+Billed Duration: ([0-9]+) ms")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing listens on {port}")


def clean_environment(function_env, memory_mb):
    """What the emulated function sees: its own variables, PATH, HOME and
    what the Lambda service sets itself."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    env.update(function_env)
    env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(memory_mb)
    return env


class Emulator:
    """One emulator serving one function instance."""

    def __init__(self, rie, binary, env):
        self.port = free_port()
        self.lines = []
        self._changed = threading.Condition()
        # --log-level on the command line: the emulator would otherwise
        # take the function's LOG_LEVEL and hide its INFO reports. The
        # Runtime API gets a port of its own too (its default, 9001, would
        # keep two emulators from running at once).
        runtime_api = f"127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [rie, "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}", "--runtime-api-address", runtime_api,
             "--log-level", "info", binary],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=os.path.dirname(binary))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            wait_for_port(self.port, self.process)
        except RuntimeError as error:
            self._reader.join(timeout=2)
            raise RuntimeError(f"{error}: {' / '.join(self.lines[-5:])}") from None
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def _read(self):
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()

    def invoke(self, event):
        """The function's answer and the round trip's seconds."""
        started = time.perf_counter()
        self.connection.request("POST", "/2015-03-31/functions/function/invocations", body=event,
                                headers={"content-type": "application/json"})
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"the emulator answered {response.status}: {body[:300]!r}")
        return json.loads(body) if body else None, elapsed

    def wait_for_line(self, pattern, timeout=10, start=0):
        """The first match of `pattern` in the output from line `start`."""
        deadline = time.time() + timeout
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    found = pattern.search(line)
                    if found:
                        return found
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError(f"no `{pattern.pattern}` in the emulator's output:\n" + "\n".join(self.lines[-20:]))
                self._changed.wait(left)

    def init_ms(self):
        return float(self.wait_for_line(INIT_REPORT).group(1))

    def output_since(self, start):
        with self._changed:
            return list(self.lines[start:])

    def runtime_pid(self):
        """The function's process (the emulator's child)."""
        for task in os.listdir(f"/proc/{self.process.pid}/task"):
            with open(f"/proc/{self.process.pid}/task/{task}/children") as children:
                for pid in children.read().split():
                    return int(pid)
        return None

    def rss_kib(self):
        pid = self.runtime_pid()
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def stop(self):
        self.connection.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)


def api_event(method, path, route_key, path_parameters=None, query="", token=None, body=None,
              source_ip="203.0.113.7"):
    """An API Gateway HTTP API (payload 2.0) event, as the gateway sends it."""
    headers = {"accept": "application/json", "host": "measure.execute-api.us-east-1.amazonaws.com",
               "user-agent": "lambda-measure", "x-forwarded-for": source_ip, "x-forwarded-proto": "https"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if body is not None:
        headers["content-type"] = "application/json"
    event = {
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": query, "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "measure", "domainName": "measure.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "measure", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                                "sourceIp": source_ip, "userAgent": "lambda-measure"},
            "requestId": f"measure-{time.monotonic_ns()}", "routeKey": route_key, "stage": "$default",
            "time": "26/Nov/2026:12:00:00 +0000", "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(pair.split("=", 1) for pair in query.split("&"))
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body is not None:
        event["body"] = json.dumps(body)
    return json.dumps(event).encode()


class Api:
    """A small client of `shop-local`, which makes the fixtures."""

    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None, token=None, expect=(200, 201, 204)):
        request = urllib.request.Request(self.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        if status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def register(self, email, password="correct horse battery"):
        self.call("POST", "/api/auth/register", {"email": email, "password": password, "name": "Measure"},
                  expect=(201, 409))
        return self.login(email, password)

    def login(self, email, password="correct horse battery"):
        return self.call("POST", "/api/auth/login", {"email": email, "password": password})["token"]


def start_shop_local(binary, env, workdir):
    """`shop-local` on a free loopback port against the measured table."""
    port = free_port()
    # The child keeps its own copy of the log's descriptor.
    with open(os.path.join(workdir, "shop-local.log"), "w") as log:
        process = subprocess.Popen([binary], env=dict(env, PORT=str(port), DATA_DIR=os.path.join(workdir, "data")),
                                   stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    return process, Api(f"http://127.0.0.1:{port}")


def template_memory(template="template.yaml"):
    """binary -> MemorySize (MB) as template.yaml deploys it: a function's
    own, or the Globals one."""
    with open(template) as f:
        text = f.read()
    default = int(re.search(r"\nGlobals:\n  Function:\n(?:    .*\n)*?    MemorySize: (\d+)", text).group(1))
    memory = {}
    for resource in re.split(r"\n  (?=[A-Za-z0-9]+:\n    Type: )", text):
        binary = re.search(r"\n        Binary: (\S+)", resource)
        if binary:
            own = re.search(r"\n      MemorySize: (\d+)", resource)
            memory[binary.group(1)] = int(own.group(1)) if own else default
    return memory
