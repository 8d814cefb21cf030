"""Opens shop-local's GET /docs in headless Chromium, as a person would,
and checks that Swagger UI rendered every operation of openapi.yaml.

Chromium (Debian's package) loads the page with the network cut off from
everything but this loopback server, runs its scripts, and dumps the DOM;
every operation must appear as Swagger UI's `operations-<tag>-<operationId>`
block, and the page must have loaded nothing from elsewhere. With
--screenshot PATH it also saves what the page looks like.
Run by local-stack/test-all.sh; SHOP_URL names the server. Prints
'N passed, N failed' and exits non-zero on a failure.
"""

import os
import subprocess
import sys
import tempfile

import yaml
from report import report

BASE = os.environ["SHOP_URL"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=20000",
]


def chromium(*arguments):
    with tempfile.TemporaryDirectory() as profile:
        command = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
        return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


def main():
    with open(os.path.join(REPO, "openapi.yaml")) as document:
        spec = yaml.safe_load(document)
    expected = [
        f"operations-{operation['tags'][0]}-{operation['operationId']}"
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
    ]
    dom = chromium("--dump-dom", f"{BASE}/docs").stdout
    checks = [("the page is Swagger UI", 'id="swagger-ui"' in dom and "swagger-ui" in dom, "")]
    checks.append(("its title names the API", "Shop API" in dom, ""))
    missing = [block for block in expected if f'id="{block}"' not in dom]
    checks.append((f"all {len(expected)} operations rendered", not missing, missing))
    checks.append(("nothing but this server was asked for", "cdn" not in dom.lower() and "unpkg" not in dom, ""))
    if "--screenshot" in sys.argv:
        path = sys.argv[sys.argv.index("--screenshot") + 1]
        shot = chromium(f"--screenshot={path}", "--window-size=1280,1400", f"{BASE}/docs")
        checks.append(("a screenshot was taken", os.path.exists(path), shot.stderr[-300:]))
    return report("docs_page", checks)


if __name__ == "__main__":
    sys.exit(main())
