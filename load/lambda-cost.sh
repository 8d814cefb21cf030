#!/usr/bin/env bash
# Dollars per million requests, per route and for the load tester's mix
# (see load/lambda_cost.py): the mix replayed through the function binaries
# under AWS's Runtime Interface Emulator against DynamoDB Local and Redis on
# free loopback ports, with the read and write units DynamoDB reports for
# every call and the billed duration the emulator reports for every
# invocation, priced at list prices (written in the script, with their
# date).
#
#   load/lambda-cost.sh                        (500 scenario iterations)
#   COST_ITERATIONS=1000 COST_JSON=out.json load/lambda-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source local-stack/lib.sh

# The functions of the mix (load/lambda_cost.py's list), built alone.
FUNCTIONS="auth-register categories-list products-list products-get orders-create orders-get health
    cart-items-put cart-items-delete cart-get cart-clear checkout"
source load/lambda-stand-ins.sh
PYTHONPATH=load python3 load/lambda_cost.py "$RIE" "$REPO_DIR/target/release" "$REPO_DIR/target/fast/shop-local" \
    "$WORK/env"
