#!/usr/bin/env bash
# Builds the upstream pieces of the real-cluster suite from pinned sources, through the Go module
# proxy, into a cache outside the clone keyed by the pins:
#
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl  (cmd/…)
#   e2e.test (go test -c k8s.io/kubernetes/test/e2e)  ginkgo  agnhost (test/images/agnhost)
#   regression-issue-74839 (test/images/…: the conntrack invalid-state test's server)
#   etcd (go.etcd.io/etcd/server/v3)  coredns  pause (build/pause/linux/pause.c, gcc -static)
#
# Every pin lives in test/cluster/upstream/go.mod (Kubernetes, its staging modules, ginkgo, etcd)
# and test/cluster/upstream/coredns/go.mod (CoreDNS); versions.env names them for the docs and
# the harness. The cache key is a hash of those files, this script and `go version`, so a change
# of pin rebuilds and anything else reuses. Prints the bin directory as its last line.
#
#   TWILL_CACHE   cache root (default /var/cache/twill)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
up=$here/upstream
# shellcheck source=upstream/versions.env
source "$up/versions.env"

if ! command -v go >/dev/null; then
  echo "build: no Go toolchain: install Go >= 1.24 (the real-cluster suite builds Kubernetes from source)" >&2
  exit 3
fi

cache=${TWILL_CACHE:-/var/cache/twill}
key=$( { cat "$0" "$up/versions.env" "$up/go.mod" "$up/go.sum" "$up/coredns/go.mod" "$up/coredns/go.sum"; go version; } | sha256sum | cut -c1-16)
out=$cache/upstream-$KUBE_VERSION-$key
bin=$out/bin
if [[ -f $out/.complete ]]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
log() { echo "build: $(date +%T) $*" >&2; }

export CGO_ENABLED=0 GOFLAGS=-mod=readonly
# versions.env must name what go.mod pins.
pinned() { grep -qE "^[[:space:]]*(require )?$1 $2( |$)" "$3" || { echo "build: $3 does not pin $1 $2 (versions.env says so)" >&2; exit 2; }; }
pinned k8s.io/kubernetes "$KUBE_VERSION" "$up/go.mod"
pinned go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$up/go.mod"
pinned github.com/onsi/ginkgo/v2 "$GINKGO_VERSION" "$up/go.mod"
pinned github.com/coredns/coredns "$COREDNS_VERSION" "$up/coredns/go.mod"

# What `make` stamps into a release (hack/lib/version.sh), so every component and e2e.test report
# the pinned version to each other and to the e2e framework's version checks.
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ld+=" -X $pkg.buildDate=2000-01-01T00:00:00Z"
done

start=$SECONDS
need() { for b in "$@"; do [[ -x $bin/$b ]] || return 0; done; return 1; }

cd "$up"
if need kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl agnhost ginkgo etcd; then
  log "go build kubernetes $KUBE_VERSION components, agnhost, ginkgo, etcd $ETCD_VERSION"
  go build -trimpath -ldflags "$ld" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/test/images/agnhost github.com/onsi/ginkgo/v2/ginkgo
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
fi
if need regression-issue-74839; then
  log "go build test/images/regression-issue-74839"
  go build -trimpath -ldflags "-s -w" -o "$bin/" k8s.io/kubernetes/test/images/regression-issue-74839
fi
if need e2e.test; then
  log "go test -c k8s.io/kubernetes/test/e2e"
  go test -c -trimpath -ldflags "$ld" -o "$bin/e2e.test.tmp" k8s.io/kubernetes/test/e2e
  mv "$bin/e2e.test.tmp" "$bin/e2e.test"
fi
if need coredns; then
  log "go build coredns $COREDNS_VERSION"
  (cd coredns && go build -trimpath -ldflags "-s -w" -o "$bin/coredns.tmp" github.com/coredns/coredns)
  mv "$bin/coredns.tmp" "$bin/coredns"
fi
if need pause; then
  log "gcc -static pause $PAUSE_VERSION"
  src=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$bin/pause" "$src"
  strip "$bin/pause"
fi
# The e2e suite's fixtures are read from the source tree (--kubectl-path aside, e2e.test embeds
# most of them; the rest come from this directory): keep the module's path next to the binaries.
go list -m -f '{{.Dir}}' k8s.io/kubernetes > "$out/kubernetes-src"
echo "$((SECONDS - start))" > "$out/build-seconds"
touch "$out/.complete"
log "done in $((SECONDS - start)) s: $bin"
echo "$bin"
