"""Checks local monitoring as a person meets it: Prometheus scraping a
shop-local under load, its rules loaded and evaluating, and the dashboard
drawn with data in headless Chromium.

PROMETHEUS_URL names the Prometheus of local-stack/monitoring.sh, scraping
the shop-local that shop-load is driving. Waits (at most 120 s) until the
recording rules have values, then checks the target is up, every rule
(12 alerts, the recording rules) is loaded and healthy, and the dashboard
page, rendered by Chromium with its scripts, drew a line in each of its
graphs. SCREENSHOT (a path) keeps what the page looks like. Run by
local-stack/test-all.sh. Prints 'N passed, N failed' and exits non-zero on
a failure.
"""

import math
import os
import re
import subprocess
import sys
import tempfile
import time

import requests
from report import report

PROMETHEUS = os.environ["PROMETHEUS_URL"]
SCREENSHOT = os.environ.get("SCREENSHOT")
GRAPHS = ["requests", "errors", "p95", "p99", "cache", "orders", "lag", "webhooks"]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=10000", "--window-size=1400,1500",
]
checks = []


def check(name, condition, detail=""):
    checks.append((name, bool(condition), detail))


def query(expr):
    response = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def has_value(expr):
    return any(not math.isnan(float(sample["value"][1])) for sample in query(expr))


def wait_for_rules():
    wanted = ["shop:http_requests:rate1m:all", "shop:http_request_duration_seconds:p95_5m:all",
              "shop:cache_hit:ratio_rate5m"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        missing = [expr for expr in wanted if not has_value(expr)]
        if not missing:
            return []
        time.sleep(2)
    return missing


def chromium(*arguments):
    with tempfile.TemporaryDirectory() as profile:
        command = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
        return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


def lines_per_graph(dom):
    """Each graph's count of drawn lines (SVG paths with points)."""
    counts = {}
    for graph in GRAPHS:
        start = dom.find(f'id="{graph}"')
        end = dom.find('class="shop-graph', start + 1) if start >= 0 else -1
        block = dom[start:end if end > 0 else len(dom)] if start >= 0 else ""
        counts[graph] = len(re.findall(r'<path[^>]*\sd="M', block))
    return counts


def main():
    missing = wait_for_rules()
    check("the recording rules have values under load", not missing, missing)
    rate = query("shop:http_requests:rate1m:all")
    check("requests are flowing", rate and float(rate[0]["value"][1]) > 0, rate)

    targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    check("the shop-local target is up", [t["health"] for t in targets] == ["up"], targets)

    groups = requests.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    alerts = [rule for rule in rules if rule["type"] == "alerting"]
    check("12 alerts are loaded", len(alerts) == 12, [rule["name"] for rule in alerts])
    unhealthy = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    check("every rule evaluates without error", not unhealthy, unhealthy)

    page = f"{PROMETHEUS}/consoles/shop.html"
    dom = chromium("--dump-dom", page).stdout
    check("the dashboard renders", "shop API, as shop-local" in dom, dom[:500])
    counts = lines_per_graph(dom)
    empty = [graph for graph, count in counts.items() if count == 0]
    check("every graph drew a line", not empty, counts)
    check("nothing was fetched from elsewhere", not re.search(r'(src|href)="https?://(?!127\.0\.0\.1)', dom))
    if SCREENSHOT:
        chromium(f"--screenshot={SCREENSHOT}", page)
        check("the screenshot was written", os.path.getsize(SCREENSHOT) > 10_000, SCREENSHOT)
    return report("dashboard_page", checks)


if __name__ == "__main__":
    sys.exit(main())
