#!/usr/bin/env bash
# npm run bench: every benchmark, each printing a table of twill vs an anchor measured in the
# same run. Needs root (network namespaces). Arguments after -- go to bench/agent.js and
# bench/soak.js (each reads its own flags: e.g. `npm run bench -- --minutes 5` shortens the soak).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The peers every table compares with (flanneld, flannel's CNI chain, kube-network-policies), built once into the cache.
TWILL_PEERS_BIN=$(bash bench/peers/build.sh | tail -1)
export TWILL_PEERS_BIN
echo "== netlink: programming peers through lib/netlink vs ip -batch + bridge -batch"
node dist/bench/netlink.js
echo "== agent: convergence, memory, event latency, idle CPU vs flanneld (etcd mode)"
node dist/bench/agent.js "$@"
echo "== soak: 5,000 peers under 10 lease changes/s (default 30 min; --minutes N)"
node dist/bench/soak.js "$@"
echo "== throughput: pod-to-pod vs host-to-host, VXLAN alone and flannel"
node dist/bench/throughput.js
echo "== kube: kube mode on a real kube-apiserver, 1k and 5k Nodes, vs flanneld"
node dist/bench/kube.js
echo "== policy: NetworkPolicy (1,000 pods, 500 policies) on a real kube-apiserver vs no policy and kube-network-policies"
node dist/bench/policy.js
if [[ -f dist/bench/cni.js ]]; then
  echo "== cni: twill's chain vs flannel's chain (and the bridge + host-local floor)"
  node dist/bench/cni.js
fi
