#!/usr/bin/env bash
# The test command: set-up, lint, typecheck, then every test (unit, integration, e2e).
# Tests that need root skip with a message when not root; in CI (root) they all run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint"; npx eslint .
echo "== typecheck"; npx tsc -p tsconfig.json --noEmit
echo "== real-cluster prerequisites (cached)"; source scripts/cluster-prepare.sh
echo "== tests"
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json "$@" || status=$?
node scripts/summary.mjs .tmp/vitest.json || true
exit $status
