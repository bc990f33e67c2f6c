#!/usr/bin/env bash
# kind end-to-end test for the Kubernetes install: builds the image, creates a 1 control-plane +
# 2 worker kind cluster without a default CNI (deploy/kind/kind-config.yaml), loads the image,
# applies deploy/ with kustomize, waits for the rollout, then checks
#   - every node Ready, NetworkUnavailable=False (TwillIsUp), twill annotations published;
#   - two busybox pods pinned to different workers ping each other across nodes, both ways;
#   - `kubectl -n kube-system rollout restart ds/twill` keeps every node's subnet and VTEP MAC
#     and connectivity comes back.
# The cluster is deleted on exit, also on failure (after printing diagnostics).
# Without a Docker daemon, kind or kubectl it prints "SKIP: …" and exits 0.
#
#   test/e2e/kind/run.sh                 # env: TWILL_KIND_CLUSTER (name), TWILL_KIND_KEEP=1 (keep cluster)
set -euo pipefail
cd "$(dirname "$0")/../../.."

skip() { echo "SKIP: $*"; exit 0; }
command -v docker >/dev/null 2>&1 || skip "kind e2e needs a Docker daemon (docker CLI not found); run it where Docker works"
docker info >/dev/null 2>&1 || skip "kind e2e needs a Docker daemon (docker info failed); run it where Docker works"
command -v kind >/dev/null 2>&1 || skip "kind e2e needs kind on PATH (https://kind.sigs.k8s.io)"
command -v kubectl >/dev/null 2>&1 || skip "kind e2e needs kubectl on PATH"

CLUSTER=${TWILL_KIND_CLUSTER:-twill-e2e-$$}
IMAGE=$(sed -n 's/^ *image: *//p' deploy/daemonset.yaml | head -n1)
BUSYBOX=busybox:1.36
PREFIX=twill.io
TIMEOUT=240s
KUBECONFIG=$(mktemp)
export KUBECONFIG
WORK=$(mktemp -d)

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

diagnostics() {
  echo "---- diagnostics" >&2
  kubectl get nodes -o wide >&2 || true
  kubectl -n kube-system get pods -o wide >&2 || true
  kubectl get pods -o wide >&2 || true
  kubectl -n kube-system logs -l app.kubernetes.io/name=twill --all-containers --tail=80 --prefix >&2 || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ $rc -ne 0 ]] && diagnostics
  if [[ ${TWILL_KIND_KEEP:-0} == 1 ]]; then
    echo "keeping cluster $CLUSTER (KUBECONFIG=$KUBECONFIG)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    rm -f "$KUBECONFIG"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM

# One line per node: name podCIDR public-ip backend-data (subnet + VTEP identity).
node_table() {
  local p=${PREFIX//./\\.}
  kubectl get nodes -o "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR} {.metadata.annotations.$p/public-ip} {.metadata.annotations.$p/backend-data}{\"\\n\"}{end}" | sort
}

ping_pair() { # pod → IP
  kubectl exec "$1" -- ping -c 3 -W 2 "$2" >/dev/null || fail "ping from pod $1 to $2 failed"
  echo "ok: $1 → $2"
}

step "build image $IMAGE"
docker build -t "$IMAGE" .
docker pull -q "$BUSYBOX" >/dev/null

step "create kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --config deploy/kind/kind-config.yaml --kubeconfig "$KUBECONFIG"
kind load docker-image "$IMAGE" "$BUSYBOX" --name "$CLUSTER"

step "install twill (kubectl apply -k deploy/)"
kubectl apply -k deploy/
kubectl -n kube-system rollout status ds/twill --timeout="$TIMEOUT"
kubectl wait --for=condition=Ready nodes --all --timeout="$TIMEOUT"

step "node state"
node_table | tee "$WORK/before"
n=$(wc -l <"$WORK/before")
[[ $n -eq 3 ]] || fail "expected 3 nodes, got $n"
while read -r name cidr ip data; do
  [[ -n $cidr && -n $ip && $data == *VtepMAC* ]] || fail "node $name lacks podCIDR or $PREFIX annotations: '$cidr' '$ip' '$data'"
  reason=$(kubectl get node "$name" -o 'jsonpath={.status.conditions[?(@.type=="NetworkUnavailable")].reason}')
  [[ $reason == TwillIsUp ]] || fail "node $name: NetworkUnavailable reason is '$reason', want TwillIsUp"
done <"$WORK/before"
kubectl -n kube-system exec ds/twill -c twill -- twilld status

step "pods on two workers"
mapfile -t workers < <(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
[[ ${#workers[@]} -eq 2 ]] || fail "expected 2 workers, got ${#workers[@]}"
for i in 0 1; do
  kubectl run "ping-$i" --image="$BUSYBOX" --image-pull-policy=IfNotPresent --restart=Never \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"${workers[$i]}\"}}" -- sleep 3600
done
kubectl wait --for=condition=Ready pod/ping-0 pod/ping-1 --timeout="$TIMEOUT"
ip0=$(kubectl get pod ping-0 -o jsonpath='{.status.podIP}')
ip1=$(kubectl get pod ping-1 -o jsonpath='{.status.podIP}')
echo "ping-0 on ${workers[0]}: $ip0; ping-1 on ${workers[1]}: $ip1"
ping_pair ping-0 "$ip1"
ping_pair ping-1 "$ip0"

step "rollout restart keeps subnets and VTEP MACs"
kubectl -n kube-system rollout restart ds/twill
kubectl -n kube-system rollout status ds/twill --timeout="$TIMEOUT"
node_table | tee "$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "node subnets or VTEP identities changed across the restart"
ping_pair ping-0 "$ip1"
ping_pair ping-1 "$ip0"

echo
echo "PASS: kind e2e ($CLUSTER)"
