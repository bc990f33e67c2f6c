#!/usr/bin/env bash
# Builds the peers the benchmarks compare twill with, from pinned Go modules (versions.env beside
# this file) through the module proxy, into a cache outside the clone keyed by the pins:
#
#   flanneld                      github.com/flannel-io/flannel (CGO on, as flannel's Makefile
#                                 builds amd64; stamped with its version)
#   flannel                       the flannel CNI plugin (see versions.env for which module)
#   bridge host-local portmap     github.com/containernetworking/plugins
#   kube-network-policies         sigs.k8s.io/kube-network-policies ./cmd (the NetworkPolicy peer;
#                                 its Dockerfile builds it CGO off as /bin/netpol)
#
# flanneld's main package imports every backend, and one of them (TencentCloud VPC) needs an SDK
# module the proxy does not serve. The module is copied out of the module cache and that one
# blank import is removed from main.go before building; nothing else is changed, and the VXLAN
# backend we measure is untouched. Prints the bin directory as its last line.
#
#   TWILL_CACHE   cache root (default /var/cache/twill)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
if ! command -v go >/dev/null; then
  echo "peers: no Go toolchain: the comparisons build flanneld, the CNI plugins and kube-network-policies from source" >&2
  exit 3
fi
cache=${TWILL_CACHE:-/var/cache/twill}
key=$( { cat "$0" "$here/versions.env"; go version; } | sha256sum | cut -c1-16)
out=$cache/peers-$FLANNEL_VERSION-$key
bin=$out/bin
if [[ -f $out/.complete ]]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
log() { echo "peers: $(date +%T) $*" >&2; }
work=$(mktemp -d /tmp/twill-peers.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOFLAGS=-mod=readonly

if [[ ! -x $bin/flanneld ]]; then
  log "go build flanneld $FLANNEL_VERSION"
  dir=$(cd "$work" && go mod download -json "github.com/flannel-io/flannel@$FLANNEL_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp -r "$dir" "$work/flannel" && chmod -R u+w "$work/flannel"
  grep -q '"github.com/flannel-io/flannel/pkg/backend/tencentvpc"' "$work/flannel/main.go" \
    || { echo "peers: flannel $FLANNEL_VERSION main.go no longer imports tencentvpc: revisit build.sh" >&2; exit 2; }
  sed -i '\#"github.com/flannel-io/flannel/pkg/backend/tencentvpc"#d' "$work/flannel/main.go"
  (cd "$work/flannel" && CGO_ENABLED=1 go build -trimpath \
    -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" -o "$bin/flanneld.tmp" .)
  mv "$bin/flanneld.tmp" "$bin/flanneld"
fi
export CGO_ENABLED=0 GOBIN=$work/gobin
if [[ ! -x $bin/flannel ]]; then
  log "go install $FLANNEL_CNI_MODULE/plugins/meta/flannel@$FLANNEL_CNI_VERSION"
  (cd "$work" && go install -trimpath -ldflags "-s -w" "$FLANNEL_CNI_MODULE/plugins/meta/flannel@$FLANNEL_CNI_VERSION")
  mv "$GOBIN/flannel" "$bin/flannel"
fi
for p in main/bridge ipam/host-local meta/portmap; do
  b=${p#*/}
  [[ -x $bin/$b ]] && continue
  log "go install github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"
  (cd "$work" && go install -trimpath -ldflags "-s -w" "github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION")
  mv "$GOBIN/$b" "$bin/$b"
done
if [[ ! -x $bin/kube-network-policies ]]; then
  log "go install $KNP_MODULE/cmd@$KNP_VERSION"
  (cd "$work" && go install -trimpath -ldflags "-s -w" "$KNP_MODULE/cmd@$KNP_VERSION")
  mv "$GOBIN/cmd" "$bin/kube-network-policies"
fi
touch "$out/.complete"
log "done in $SECONDS s"
echo "$bin"
