#!/usr/bin/env bash
# One-time (idempotent) set-up for a fresh Debian 12 machine with Node >= 20, as root:
# Debian packages the agent, the tests and the demo use, npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(etcd-server etcd-client iproute2 nftables iptables iperf3 containerd runc
  busybox-static containernetworking-plugins procps ethtool iputils-ping
  curl openssl util-linux buildah debootstrap libcap2-bin ca-certificates)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  else
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packaged etcd and containerd services are not used: tests start their own.
    for svc in etcd containerd; do
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
  fi
fi

stamp=node_modules/.twill-installed
if [[ ! -f $stamp || package-lock.json -nt $stamp ]]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

bash scripts/build.sh
