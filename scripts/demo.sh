#!/usr/bin/env bash
# The README's first command: set-up (idempotent), then three simulated nodes in network
# namespaces running twilld against a real etcd, with a live connectivity matrix.
#   npm run demo               interactive, until Ctrl-C
#   npm run demo -- --check    one pass; exit 0 only if every pod pair connects (no NAT)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec node dist/test/harness/demo.js "$@"
