"""localstripe, bound to loopback and kept in memory.

localstripe (PyPI) is a stateful fake of Stripe's API: PaymentIntents,
charges, refunds, and webhook deliveries signed with Stripe's scheme. Its
own entry point listens on every interface and pickles its whole state to
/tmp/localstripe.pickle on every write (shared by every instance on the
machine, and slower with every object kept). This starts the same
application on 127.0.0.1 only (or HOST: the Docker bridge's address that
sam local's containers reach, never every interface), with no file at all.

Usage: python localstripe_loopback.py PORT [HOST]
"""

import logging
import sys

from aiohttp import web
from localstripe import resources
from localstripe.server import app


def main() -> None:
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    # State lives in this process only: a fresh server is an empty Stripe.
    resources.Store.dump_to_disk = lambda self: None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    web.run_app(app, host=host, port=port, access_log=logging.getLogger("aiohttp.access"), print=None)


if __name__ == "__main__":
    main()
