#!/usr/bin/env bash
# `npm run cluster` / `npm run conformance`: set-up (idempotent: Debian packages, npm, the build),
# the pinned upstream build and the images (both cached outside the clone), then a real
# Kubernetes cluster in network namespaces with twill installed from its own image and deploy/.
#   npm run cluster                 until Ctrl-C; prints KUBECONFIG, nodes, pods, a connectivity matrix
#   npm run cluster -- --check      exit 0 only if all of it works
#   npm run conformance             upstream's sig-network conformance selection; JUnit in .tmp/conformance/
#   npm run conformance -- --netpol upstream's NetworkPolicy suite (Netpol); JUnit in .tmp/conformance/netpol/
#                                   (--ci: only the subset CI runs; see docs/conformance.md)
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=cluster
if [[ ${1:-} == conformance ]]; then cmd=conformance; shift; fi
bash scripts/setup.sh >&2
source scripts/cluster-prepare.sh
exec node dist/test/cluster/main.js "$cmd" "$@"
