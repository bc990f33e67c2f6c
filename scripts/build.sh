#!/usr/bin/env bash
# Builds everything: the agent and libraries (tsc -> dist/) and the self-contained CNI executable.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist/agent dist/lib dist/test dist/bench
npx tsc -p tsconfig.build.json
if [[ -f scripts/build-cni.sh ]]; then bash scripts/build-cni.sh; fi
