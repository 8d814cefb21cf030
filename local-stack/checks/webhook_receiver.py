"""A webhook receiver for the tests: verifies every delivery with the
`standardwebhooks` package (Standard Webhooks' own Python library, not our
code) and answers by the first segment of the path:

  /flaky/...  500 to the first attempt of each webhook-id (per path), 200 after
  /ok/...     200
  /down/...   500 always
  /slow/...   sleeps 12 s before 200 (past the sender's 10 s timeout)
  /redirect/... 307 to /ok/... (a sender must not follow it)

Control (JSON):
  POST /_secrets   {"path": "/flaky/a", "secrets": ["whsec_..."]}: verify
                   deliveries to that path with each of these secrets
  GET  /_received  every delivery so far: path, webhook-id, timestamp, the
                   n-th attempt of that id, which secrets verified it
                   (indexes), what was answered, when (unix seconds), body

Binds 127.0.0.1 on a free port and prints `listening <port>`.
Usage: python webhook_receiver.py
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

lock = threading.Lock()
secrets = {}
received = []
attempts = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_received":
            with lock:
                body = json.dumps(received).encode()
            return self.answer(200, body)
        self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        if self.path == "/_secrets":
            request = json.loads(data)
            with lock:
                secrets[request["path"]] = request["secrets"]
            return self.answer(204)
        at = time.time()
        headers = {name.lower(): value for name, value in self.headers.items()}
        msg_id = headers.get("webhook-id", "")
        with lock:
            keys = list(secrets.get(self.path, []))
            # Per path: two subscriptions get the same event (and id).
            key = (self.path, msg_id)
            attempts[key] = attempts.get(key, 0) + 1
            attempt = attempts[key]
        verified = []
        for index, secret in enumerate(keys):
            try:
                Webhook(secret).verify(data, headers)
                verified.append(index)
            except WebhookVerificationError:
                pass
        mode = self.path.split("/")[1]
        redirect = ()
        if mode == "flaky":
            status = 500 if attempt == 1 else 200
        elif mode == "down":
            status = 500
        elif mode == "slow":
            time.sleep(12)
            status = 200
        elif mode == "redirect":
            status, redirect = 307, (("Location", "/ok" + self.path[len("/redirect"):]),)
        else:
            status = 200
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        with lock:
            received.append({
                "path": self.path,
                "id": msg_id,
                "timestamp": headers.get("webhook-timestamp"),
                "signature": headers.get("webhook-signature"),
                "attempt": attempt,
                "verified": verified,
                "status": status,
                "at": at,
                "body": body,
            })
        self.answer(status, b"{}", redirect)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
