#!/usr/bin/env bash
# Builds every container image the real-cluster suite runs, without a registry and without a
# Docker daemon, as OCI archives that the harness imports into each node's containerd
# (`ctr -n k8s.io images import <archive>`):
#
#   registry.k8s.io/pause:<PAUSE_VERSION>                  scratch + the static /pause
#   registry.k8s.io/e2e-test-images/agnhost:<tag>           Debian + agnhost + upstream's tools
#   registry.k8s.io/e2e-test-images/busybox:<tag>           scratch + Debian's busybox-static
#   registry.k8s.io/e2e-test-images/jessie-dnsutils:<tag>   Debian + dig/nslookup
#   registry.k8s.io/e2e-test-images/regression-issue-74839:<tag>  Debian + the conntrack test's server
#   registry.k8s.io/e2e-test-images/httpd:<tag> (×2)        Debian + apache2, foreground on :80
#   registry.k8s.io/e2e-test-images/nginx:<tag> (×2)        Debian + nginx, foreground on :80
#   registry.k8s.io/coredns/coredns:<COREDNS_VERSION>       scratch + /coredns + /etc/ssl/certs
#   ghcr.io/twill-net/twill:test                            the repository's Dockerfile
#
# The e2e tags are read from the pinned Kubernetes source (test/utils/image/manifest.go), so the
# names are exactly the ones e2e.test asks kubelet for (pull policy IfNotPresent: never pulled).
# docs/cluster-images.md says what each image holds and why.
#
#   bash test/cluster/images.sh <upstream-bin-dir> [--verify | --no-verify]
#
# <upstream-bin-dir> holds the static binaries agnhost, coredns, pause and regression-issue-74839
# (test/cluster/build.sh).
# stdout: one line `<absolute path of the .oci.tar> <image reference>` per image, nothing else;
# logs go to stderr. Exit status non-zero with a message on any failure.
#
# Caching: everything lives under ${TWILL_CACHE:-/var/cache/twill}/images: buildah's own storage
# (never the system's), and one OCI archive per image whose file name carries a hash of its
# inputs (the function below that builds it, the package list, the binaries' sha256, the parent
# image's key). A rerun with nothing changed only hashes and prints. The Debian base (debootstrap
# minbase) is one layer shared by agnhost, jessie-dnsutils, httpd, nginx and twill's Node base.
# twill's image is keyed by the files its Dockerfile copies, so a code change rebuilds it (buildah
# --layers keeps the `npm ci` layers, so only the compile and the final stage rerun).
#
# Verification: after any (re)build, or with --verify, a throwaway containerd (own root, state and
# socket in a temp dir) imports every archive, checks the names, and runs agnhost, busybox, pause,
# coredns, twill, jessie-dnsutils, httpd and nginx once; then it is stopped and removed (≈70 s).
# --no-verify skips it (for quick local iterations on twill's code).
#
# Environment: TWILL_CACHE (cache root), TWILL_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# KUBE_SRC (the k8s.io/kubernetes module source; default: the Go module cache's copy of the pin).
set -euo pipefail

log() { echo "images: $(date +%T) $*" >&2; }
die() { echo "images: error: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

verify=0
args=()
for a in "$@"; do
  case $a in
    --verify) verify=1 ;;
    --no-verify) verify=-1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 0 ;;
    *) args+=("$a") ;;
  esac
done
[[ ${#args[@]} -eq 1 ]] || die "usage: bash test/cluster/images.sh <upstream-bin-dir> [--verify | --no-verify]"
[[ -d ${args[0]} ]] || die "upstream bin dir '${args[0]}' does not exist (run test/cluster/build.sh)"
bindir=$(cd "${args[0]}" && pwd)
[[ $(id -u) -eq 0 ]] || die "must run as root (buildah with its own storage, debootstrap, containerd)"
for cmd in buildah debootstrap containerd ctr runc sha256sum flock findmnt ip curl node npm setcap; do
  command -v "$cmd" >/dev/null || die "'$cmd' not found: apt-get install buildah debootstrap containerd runc curl iproute2 libcap2-bin (and Node >= 20)"
done

# ---- pins ------------------------------------------------------------------------------------
# shellcheck source=upstream/versions.env
source "$here/upstream/versions.env"   # KUBE_VERSION PAUSE_VERSION COREDNS_VERSION
if [[ -z ${KUBE_SRC:-} ]]; then
  modcache=$(go env GOMODCACHE 2>/dev/null || true)
  KUBE_SRC=${modcache:-${GOPATH:-$HOME/go}/pkg/mod}/k8s.io/kubernetes@$KUBE_VERSION
fi
manifest=$KUBE_SRC/test/utils/image/manifest.go
[[ -f $manifest ]] || die "no Kubernetes $KUBE_VERSION source at $KUBE_SRC (run test/cluster/build.sh, or set KUBE_SRC)"
# e2e_tag <Config name> <image name>: the tag e2e.test uses, e.g. e2e_tag Agnhost agnhost -> 2.56
e2e_tag() {
  local t
  t=$(sed -nE "s/^[[:space:]]*configs\\[$1\\] = Config\\{list\\.[A-Za-z0-9]+, \"$2\", \"([^\"]+)\"\\}.*/\\1/p" "$manifest")
  [[ -n $t ]] || die "$manifest names no tag for $1 ($2)"
  echo "$t"
}
e2e=registry.k8s.io/e2e-test-images
ref_pause=registry.k8s.io/pause:$PAUSE_VERSION
[[ $(e2e_tag Pause pause) == "$PAUSE_VERSION" ]] || die "versions.env PAUSE_VERSION=$PAUSE_VERSION but e2e.test expects pause:$(e2e_tag Pause pause)"
ref_agnhost=$e2e/agnhost:$(e2e_tag Agnhost agnhost)
ref_busybox=$e2e/busybox:$(e2e_tag BusyBox busybox)
ref_dnsutils=$e2e/jessie-dnsutils:$(e2e_tag JessieDnsutils jessie-dnsutils)
ref_httpd=$e2e/httpd:$(e2e_tag Httpd httpd)
ref_httpd_new=$e2e/httpd:$(e2e_tag HttpdNew httpd)
ref_nginx=$e2e/nginx:$(e2e_tag Nginx nginx)
ref_nginx_new=$e2e/nginx:$(e2e_tag NginxNew nginx)
ref_regression=$e2e/regression-issue-74839:$(e2e_tag RegressionIssue74839 regression-issue-74839)
ref_coredns=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
ref_twill=ghcr.io/twill-net/twill:test
porter=$KUBE_SRC/test/images/agnhost/porter
[[ -f $porter/localhost.crt && -f $porter/localhost.key ]] || die "no porter certificates in $porter"

mirror=${TWILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

# ---- inputs: the upstream binaries (real ones; the version checks refuse anything else) --------
static() { ! ldd "$1" >/dev/null 2>&1; }   # ldd fails on a static executable
for b in agnhost coredns pause regression-issue-74839; do
  [[ -x $bindir/$b ]] || die "$bindir/$b missing or not executable (test/cluster/build.sh builds it)"
  static "$bindir/$b" || die "$bindir/$b is dynamically linked; images built from scratch need static binaries"
done
out=$("$bindir/pause" -v 2>&1 || true)
[[ $out == "pause.c v$PAUSE_VERSION" ]] || die "$bindir/pause -v says '$out', expected 'pause.c v$PAUSE_VERSION'"
out=$("$bindir/coredns" -version 2>&1 || true)
[[ $out == *"CoreDNS-${COREDNS_VERSION#v}"* ]] || die "$bindir/coredns -version says '$out', expected CoreDNS-${COREDNS_VERSION#v}"
out=$("$bindir/agnhost" --help 2>&1 || true)
[[ $out == *netexec* && $out == *porter* ]] || die "$bindir/agnhost --help does not list netexec/porter subcommands: not agnhost?"
busybox_bin=/bin/busybox   # Debian's busybox-static (scripts/setup.sh installs it)
[[ -x $busybox_bin ]] && static "$busybox_bin" || die "$busybox_bin missing or not static: apt-get install busybox-static"
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")
[[ -f $npm_dir/package.json ]] || die "cannot find npm's package directory (from $(command -v npm))"
node_version=$("$node_bin" --version)
[[ ${node_version#v} =~ ^([0-9]+) && ${BASH_REMATCH[1]} -ge 20 ]] || die "node $node_version on this host; the image's Node base needs >= 20"
npm_version=$(sed -nE 's/^  "version": "([^"]+)".*/\1/p' "$npm_dir/package.json" | head -1)
cacerts=/etc/ssl/certs/ca-certificates.crt
[[ -f $cacerts ]] || die "$cacerts missing: apt-get install ca-certificates"
sha() { sha256sum "$@" | cut -d' ' -f1; }

# ---- cache, lock, buildah with its own storage ---------------------------------------------------
cache=${TWILL_CACHE:-/var/cache/twill}/images
mkdir -p "$cache/oci" "$cache/storage" "$cache/runroot"
exec 9>"$cache/.lock"
flock -w 3600 9 || die "could not lock $cache/.lock within an hour"

export BUILDAH_ISOLATION=chroot   # RUN steps without runc/cgroups; they share the host's network
export STORAGE_DRIVER=overlay
B() { buildah --root "$cache/storage" --runroot "$cache/runroot" --storage-driver overlay "$@"; }

work=
containers=()
netns=()
ctrd_pid=
cleanup() {
  local rc=$?
  set +e
  for c in "${containers[@]}"; do B rm "$c" >/dev/null 2>&1; done
  [[ $rc -eq 0 ]] || B rm --all >/dev/null 2>&1   # e.g. a failed `bud` step's container
  if [[ -n $ctrd_pid ]]; then stop_containerd; fi
  for n in "${netns[@]}"; do ip netns delete "$n" 2>/dev/null; done
  if [[ -n $work && -d $work ]]; then
    # Whatever a failed debootstrap or containerd left mounted under the temp dir, deepest first.
    findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$work"
  fi
  [[ $rc -eq 0 ]] || log "FAILED (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/twimg-XXXXXX")
# The storage is this script's alone (and locked): working containers left by a killed run go.
B rm --all >/dev/null

# new_container <image|scratch>: a buildah working container, removed on exit if not committed.
new_container() {
  local c
  c=$(B from --pull=never --quiet "$1")
  containers+=("$c")
  echo "$c"
}
# commit <container> <reference>: commits (and removes) the working container.
commit() {
  B commit --quiet --format oci --rm "$1" "$2" >/dev/null
  local keep=() c
  for c in "${containers[@]}"; do [[ $c == "$1" ]] || keep+=("$c"); done
  containers=("${keep[@]}")
}
# key <text...>: a short hash of everything that decides an image's content.
key() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

# Apt inside a Debian-based working container: no recommends, no lists or caches left behind.
apt_install() {
  local c=$1; shift
  B run "$c" -- sh -euc "export DEBIAN_FRONTEND=noninteractive
    apt-get -q update >/dev/null
    apt-get -q install -y --no-install-recommends $* >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old"
}

# ---- 1. Debian bookworm base: debootstrap minbase, one layer -------------------------------------
build_debian() {
  local ref=$1 root=$work/rootfs c mnt
  log "debootstrap --variant=minbase $suite from $mirror"
  debootstrap --variant=minbase --components=main "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  # What the official debian:*-slim images do: the full suite set in apt's sources, no docs,
  # man pages or locales from later installs, no apt caches, and no host files.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/* "$root"/dev/* "$root"/proc/* "$root"/sys/* \
    "$root"/run/* "$root"/tmp/* "$root/etc/resolv.conf" "$root/etc/hostname"
  : >"$root/etc/machine-id"
  install -d -m 1777 "$root/run/lock"   # /var/lock points there (apache2ctl needs it)
  c=$(new_container scratch)
  mnt=$(B mount "$c")
  tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -cf - . | tar -C "$mnt" --numeric-owner --xattrs --xattrs-include='*' -xpf -
  B umount "$c" >/dev/null
  rm -rf "$root"
  B config --os linux --arch amd64 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["bash"]' --label "org.opencontainers.image.description=Debian $suite minbase (debootstrap), twill test base" "$c"
  commit "$c" "$ref"
}

# ---- 2. Node base for twill's Dockerfile: the Debian base plus this host's Node and npm ----------
# Laid out like the official node:*-bookworm-slim image (/usr/local/bin/node, npm under
# /usr/local/lib/node_modules), so the Dockerfile runs unchanged on it.
build_node() {
  local ref=$1 base=$2 c mnt
  log "node base: Node $node_version + npm $npm_version from this host on the Debian base"
  c=$(new_container "$base")
  mnt=$(B mount "$c")
  install -D -m 0755 "$node_bin" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$mnt/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  # Behind a TLS-inspecting proxy the host's Node trusts an extra CA (NODE_EXTRA_CA_CERTS); the
  # base trusts the same bundle, or `npm ci` in the Dockerfile cannot reach the registry.
  local env=(--env "NODE_VERSION=${node_version#v}")
  if [[ -n $extra_ca ]]; then
    install -D -m 0644 "$extra_ca" "$mnt/etc/ssl/certs/host-extra-ca.crt"
    env+=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-extra-ca.crt)
  fi
  B umount "$c" >/dev/null
  B config "${env[@]}" --cmd '["node"]' "$c"
  B run "$c" -- sh -euc 'node --version && npm --version' >&2
  commit "$c" "$ref"
}

# ---- 3. the test images ----------------------------------------------------------------------
build_pause() {   # upstream: FROM scratch, ADD pause, USER 65535:65535, ENTRYPOINT ["/pause"]
  local ref=$1 c
  c=$(new_container scratch)
  B copy --quiet --chmod 0755 "$c" "$bindir/pause" /pause >/dev/null
  B config --os linux --arch amd64 --user 65535:65535 --entrypoint '["/pause"]' "$c"
  commit "$c" "$ref"
}

build_busybox() {   # upstream mirrors busybox:1.37.0 (every applet a hard link in /bin), CMD ["sh"]
  local ref=$1 c mnt a
  c=$(new_container scratch)
  mnt=$(B mount "$c")
  mkdir -p "$mnt"/{bin,etc,root,home,var/spool/mail,var/www} && install -d -m 1777 "$mnt/tmp"
  install -m 0755 "$busybox_bin" "$mnt/bin/busybox"
  for a in $("$busybox_bin" --list); do
    [[ $a == busybox || -e $mnt/bin/$a ]] || ln "$mnt/bin/busybox" "$mnt/bin/$a"
  done
  # Users and groups as in the official busybox image (nobody is 65534).
  cat >"$mnt/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat >"$mnt/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
EOF
  B umount "$c" >/dev/null
  B config --os linux --arch amd64 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["sh"]' "$c"
  commit "$c" "$ref"
}

# upstream (alpine): bind-tools curl netcat-openbsd iproute2 iperf bash, /usr/local/bin/iperf,
# /uploads, porter's localhost.crt/.key in /, /agnhost and the /agnhost-2 symlink, user
# user-defined-in-image (1000) in group group-defined-in-image (50000), and /coredns (the DNS
# tests' custom-server pod runs it with a `hosts` Corefile; ours is the pinned CoreDNS, not
# upstream's 1.6.2). wget: busybox's in alpine, which the Services tests' host-exec pods run.
agnhost_pkgs="bind9-dnsutils curl wget netcat-openbsd iproute2 iperf bash ca-certificates"
build_agnhost() {
  local ref=$1 base=$2 c
  c=$(new_container "$base")
  apt_install "$c" "$agnhost_pkgs"
  B copy --quiet --chmod 0755 "$c" "$bindir/agnhost" /agnhost >/dev/null
  B copy --quiet --chmod 0755 "$c" "$bindir/coredns" /coredns >/dev/null
  B copy --quiet "$c" "$porter/localhost.crt" "$porter/localhost.key" / >/dev/null
  B run "$c" -- sh -euc '
    ln -s /usr/bin/iperf /usr/local/bin/iperf
    mkdir /uploads
    ln -s agnhost /agnhost-2
    useradd -u 1000 -U -m -s /bin/sh user-defined-in-image
    groupadd -g 50000 group-defined-in-image
    usermod -a -G group-defined-in-image user-defined-in-image
    rm -f /var/log/faillog /var/log/lastlog'
  B config --entrypoint '["/agnhost"]' --cmd '["pause"]' \
    --port 80/tcp --port 8080/tcp --port 8081/tcp --port 9376/tcp --port 5000/tcp "$c"
  commit "$c" "$ref"
}

dnsutils_pkgs="bind9-dnsutils"   # `dnsutils` is bind9-dnsutils' transitional name in bookworm
build_dnsutils() {   # upstream: debian:jessie + dnsutils; CMD is debian's ["bash"]
  local ref=$1 base=$2 c
  c=$(new_container "$base")
  apt_install "$c" "$dnsutils_pkgs"
  B config --cmd '["bash"]' "$c"
  commit "$c" "$ref"
}

# upstream: debian-base bookworm + /regression-issue-74839 as the entrypoint (the conntrack
# invalid-state test's server, which needs raw sockets: the test runs it privileged).
build_regression() {
  local ref=$1 base=$2 c
  c=$(new_container "$base")
  B copy --quiet --chmod 0755 "$c" "$bindir/regression-issue-74839" /regression-issue-74839 >/dev/null
  B config --entrypoint '["/regression-issue-74839"]' --cmd '[]' "$c"
  commit "$c" "$ref"
}

# upstream: httpd:2.4.x-alpine: apache in the foreground (`httpd-foreground`) on :80 serving
# /usr/local/apache2/htdocs/index.html ("It works!"); the StatefulSet tests move files in and out
# of that directory, so Debian's apache2 serves it from there too. Logs go to stdout/stderr.
httpd_pkgs="apache2"
build_httpd() {
  local ref=$1 base=$2 c
  c=$(new_container "$base")
  apt_install "$c" "$httpd_pkgs"
  B run "$c" -- sh -euc '
    mkdir -p /usr/local/apache2/htdocs
    echo "<html><body><h1>It works!</h1></body></html>" >/usr/local/apache2/htdocs/index.html
    cat >/etc/apache2/sites-available/000-default.conf <<EOF
<VirtualHost *:80>
	DocumentRoot /usr/local/apache2/htdocs
	<Directory /usr/local/apache2/htdocs>
		Options Indexes FollowSymLinks
		AllowOverride None
		Require all granted
	</Directory>
	ErrorLog /proc/self/fd/2
	CustomLog /proc/self/fd/1 combined
</VirtualHost>
EOF
    sed -i "s|^ErrorLog .*|ErrorLog /proc/self/fd/2|" /etc/apache2/apache2.conf
    echo "ServerName localhost" >/etc/apache2/conf-available/servername.conf
    a2enconf -q servername
    ln -sf /proc/self/fd/1 /var/log/apache2/access.log
    ln -sf /proc/self/fd/2 /var/log/apache2/error.log
    ln -sf /proc/self/fd/1 /var/log/apache2/other_vhosts_access.log
    cat >/usr/local/bin/httpd-foreground <<EOF
#!/bin/sh
set -e
mkdir -p /run/lock   # /var/lock; ctr mounts an empty tmpfs on /run
rm -f /var/run/apache2/apache2.pid
exec apache2ctl -DFOREGROUND "\$@"
EOF
    chmod 0755 /usr/local/bin/httpd-foreground'
  B config --cmd '["httpd-foreground"]' --port 80/tcp --stop-signal SIGWINCH "$c"
  commit "$c" "$ref"
}

# upstream: nginx:1.x-alpine: `nginx -g "daemon off;"` on :80, logs to stdout/stderr.
nginx_pkgs="nginx"
build_nginx() {
  local ref=$1 base=$2 c
  c=$(new_container "$base")
  apt_install "$c" "$nginx_pkgs"
  B run "$c" -- sh -euc '
    ln -sf /dev/stdout /var/log/nginx/access.log
    ln -sf /dev/stderr /var/log/nginx/error.log'
  B config --cmd '["nginx", "-g", "daemon off;"]' --port 80/tcp --stop-signal SIGQUIT "$c"
  commit "$c" "$ref"
}

# upstream (CoreDNS' own Dockerfile): distroless static, /etc/ssl/certs, /coredns with the file
# capability cap_net_bind_service, USER nonroot (65532), ENTRYPOINT ["/coredns"]. The file
# capability lets the non-root process bind :53 when the Pod keeps NET_BIND_SERVICE in its
# bounding set (add it in the manifest; with `drop: [ALL]` alone it cannot bind).
build_coredns() {
  local ref=$1 c mnt
  c=$(new_container scratch)
  mnt=$(B mount "$c")
  install -D -m 0644 "$cacerts" "$mnt/etc/ssl/certs/ca-certificates.crt"
  install -D -m 0755 "$bindir/coredns" "$mnt/coredns"
  setcap cap_net_bind_service=+ep "$mnt/coredns"
  install -d -m 1777 "$mnt/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$mnt/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$mnt/etc/group"
  B umount "$c" >/dev/null
  B config --os linux --arch amd64 --user 65532:65532 --workingdir / --entrypoint '["/coredns"]' \
    --port 53/tcp --port 53/udp "$c"
  commit "$c" "$ref"
}

# ---- 4. twill's own image: the repository's Dockerfile, its bases as build arguments ------------
# The key covers what the Dockerfile copies (after .dockerignore), the Dockerfile itself and the
# Node base, so any code change rebuilds.
twill_files() {
  (cd "$repo" && find package.json package-lock.json tsconfig*.json agent cni lib scripts bin Dockerfile .dockerignore \
     -type f ! -name '*.log' -print0 | sort -z | xargs -0 sha256sum)
}
build_twill() {
  local ref=$1 base=$2
  log "buildah bud $repo/Dockerfile (NODE_IMAGE=$base)"
  B bud --quiet --layers --force-rm --pull=never --network host --format oci \
    --build-arg "NODE_IMAGE=$base" -f "$repo/Dockerfile" -t "$ref" "$repo" >&2
}

# ---- the build plan ----------------------------------------------------------------------------
# ensure_image <local ref> <builder fn> [args]: builds into buildah storage unless present.
ensure_image() {
  local ref=$1; shift
  if ! B inspect --type image "$ref" >/dev/null 2>&1; then
    local t=$SECONDS
    "$@" "$ref" >&2
    log "built $ref in $((SECONDS - t)) s"
  fi
}
debian_key=$(key "$(declare -f build_debian)" "$suite" "$mirror")
extra_ca=
if [[ -n ${NODE_EXTRA_CA_CERTS:-} && -f ${NODE_EXTRA_CA_CERTS:-} ]]; then extra_ca=$NODE_EXTRA_CA_CERTS; fi
node_key=$(key "$debian_key" "$(sha "$node_bin")" "npm $npm_version" "$(declare -f build_node)" \
  "$([[ -z $extra_ca ]] || sha "$extra_ca")")
debian_ref=localhost/twill-images/debian:$suite-$debian_key
node_ref=localhost/twill-images/node:${node_version#v}-$node_key
ensure_debian() { ensure_image "$debian_ref" build_debian; }
ensure_node() { ensure_debian; ensure_image "$node_ref" build_node_from_base; }
build_node_from_base() { build_node "$1" "$debian_ref"; }

lines=()
built=0
# emit <name> <key> <builder fn> <needs: none|debian|node> <reference>...: one archive per
# reference (same image under each name), built once unless all archives are cached.
emit() {
  local name=$1 k=$2 fn=$3 needs=$4; shift 4
  local r i archives=() missing=0 keep=()
  for r in "$@"; do
    archives+=("$cache/oci/$name-${r##*:}-$k.oci.tar")
    [[ -f ${archives[-1]} ]] || missing=1
  done
  if [[ $missing -eq 1 ]]; then
    local t=$SECONDS parent=
    case $needs in
      debian) ensure_debian; parent=$debian_ref ;;
      node) ensure_node; parent=$node_ref ;;
    esac
    log "building $*"
    "$fn" "$1" $parent >&2   # stdout carries only the result lines
    for ((i = 0; i < $#; i++)); do
      r=${*:i+1:1}
      [[ $i -eq 0 ]] || B tag "$1" "$r"
      rm -f "${archives[i]}.tmp"
      B push --quiet --format oci "$r" "oci-archive:${archives[i]}.tmp:$r" >&2
      mv "${archives[i]}.tmp" "${archives[i]}"
      log "$r -> ${archives[i]} ($(du -m "${archives[i]}" | cut -f1) MiB)"
    done
    # The archives are the cache. twill's image stays in the storage: `rmi` would also remove its
    # dangling parents, i.e. buildah's layer cache of the Dockerfile's runtime stage.
    [[ $fn == build_twill ]] || B rmi "$@" >/dev/null 2>&1 || true
    built=1
    log "$name: $((SECONDS - t)) s"
  fi
  # Older archives of this image (other keys) are done with.
  for r in "${archives[@]}"; do keep+=(! -name "${r##*/}"); done
  find "$cache/oci" -maxdepth 1 -name "$name-*.oci.tar*" "${keep[@]}" -delete
  for ((i = 0; i < $#; i++)); do lines+=("${archives[i]} ${*:i+1:1}"); done
}

fnkey() { declare -f "$@" apt_install new_container commit; }
emit pause "$(key "$(fnkey build_pause)" "$(sha "$bindir/pause")")" build_pause none "$ref_pause"
emit busybox "$(key "$(fnkey build_busybox)" "$(sha "$busybox_bin")")" build_busybox none "$ref_busybox"
emit coredns "$(key "$(fnkey build_coredns)" "$(sha "$bindir/coredns" "$cacerts")")" build_coredns none "$ref_coredns"
emit agnhost "$(key "$debian_key" "$(fnkey build_agnhost)" "$agnhost_pkgs" \
  "$(sha "$bindir/agnhost" "$bindir/coredns" "$porter/localhost.crt" "$porter/localhost.key")")" build_agnhost debian "$ref_agnhost"
emit regression-issue-74839 "$(key "$debian_key" "$(fnkey build_regression)" "$(sha "$bindir/regression-issue-74839")")" \
  build_regression debian "$ref_regression"
emit jessie-dnsutils "$(key "$debian_key" "$(fnkey build_dnsutils)" "$dnsutils_pkgs")" build_dnsutils debian "$ref_dnsutils"
emit httpd "$(key "$debian_key" "$(fnkey build_httpd)" "$httpd_pkgs")" build_httpd debian "$ref_httpd" "$ref_httpd_new"
emit nginx "$(key "$debian_key" "$(fnkey build_nginx)" "$nginx_pkgs")" build_nginx debian "$ref_nginx" "$ref_nginx_new"
emit twill "$(key "$node_key" "$(fnkey build_twill twill_files)" "$(twill_files)")" build_twill node "$ref_twill"

# Base images of other keys are done with; buildah's layer cache (dangling images, e.g. the
# Dockerfile's `npm ci` step) is kept for the next code change until the storage passes 4 GiB.
for img in $(B images --noheading --format '{{.Name}}:{{.Tag}}' | grep '^localhost/twill-images/' || true); do
  [[ $img == "$debian_ref" || $img == "$node_ref" ]] || B rmi "$img" >/dev/null 2>&1 || true
done
if [[ $(du -sm "$cache/storage" | cut -f1) -gt 4096 ]]; then
  log "buildah storage over 4 GiB: removing its layer cache"
  B rmi --prune >/dev/null 2>&1 || true
fi

# ---- verification: a throwaway containerd imports and runs them ------------------------------
# Runs after any build (and with --verify); the marker records the set of archives verified.
verified=$cache/.verified-$(printf '%s\n' "${lines[@]}" | sha256sum | cut -c1-16)
sock=
cctr() { ctr --address "$sock" -n k8s.io "$@"; }
stop_containerd() {
  local p
  # Shims started by this containerd (their command line names its socket), then containerd.
  for p in $(pgrep -f -- "-address $sock" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
  kill -TERM "$ctrd_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$ctrd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$ctrd_pid" 2>/dev/null || true
  wait "$ctrd_pid" 2>/dev/null || true
  ctrd_pid=
  { findmnt -rn -o TARGET | grep -F "$work/ctrd/" | sort -r | while read -r m; do umount -l "$m"; done; } || true
  # containerd 1.6's shims always put their sockets in /run/containerd/s: remove it once empty
  # (not /run/containerd itself: a node of a running cluster may have it as a mount point).
  rmdir /run/containerd/s 2>/dev/null || true
  # `ctr run` parents its containers' cgroups under /k8s.io (the namespace) in every hierarchy;
  # runc removes each container's, the parent stays: remove it once empty.
  rmdir /sys/fs/cgroup/*/k8s.io 2>/dev/null || true
}
# run_check <ref> <expected substring> <args...>: `ctr run --rm` once, output must contain it.
run_check() {
  local ref=$1 want=$2 id out; shift 2
  id=twimg-$RANDOM$RANDOM
  out=$(timeout 60 ctr --address "$sock" -n k8s.io run --rm --fifo-dir "$work/ctrd/fifo" --runc-root "$work/ctrd/runc" "$ref" "$id" "$@" 2>&1) \
    || die "ctr run $ref $*: exit $?: $out"
  [[ $out == *"$want"* ]] || die "ctr run $ref $*: output lacks '$want': $out"
  log "ran $ref ${*:1:2}…: ok"
}
# daemon_check <ref> <what> <probe...>: runs the image's own command in a fresh network namespace
# until the probe (run in that namespace on the host) succeeds, then kills it.
daemon_check() {
  local ref=$1 what=$2 id ns ok=; shift 2
  id=twimg-$RANDOM$RANDOM; ns=$id
  ip netns add "$ns"; netns+=("$ns")
  ip -n "$ns" link set lo up
  cctr run -d --fifo-dir "$work/ctrd/fifo" --runc-root "$work/ctrd/runc" --with-ns "network:/run/netns/$ns" "$ref" "$id" >/dev/null
  for _ in $(seq 100); do
    if ip netns exec "$ns" "$@" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  cctr task kill -s KILL "$id" >/dev/null 2>&1 || true
  for _ in $(seq 50); do cctr task delete "$id" >/dev/null 2>&1 && break; sleep 0.1; done
  cctr container delete "$id" >/dev/null 2>&1 || true
  ip netns delete "$ns"
  [[ -n $ok ]] || die "$ref did not $what within 10 s"
  log "ran $ref: $what, ok"
}
if [[ $verify -eq 1 || ( $verify -eq 0 && ( $built -eq 1 || ! -f $verified ) ) ]]; then
  t=$SECONDS
  d=$work/ctrd; mkdir -p "$d/root" "$d/state"
  sock=$d/containerd.sock
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
  containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 &
  ctrd_pid=$!
  for _ in $(seq 100); do ctr --address "$sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr --address "$sock" version >/dev/null 2>&1 || { tail -n 20 "$d/containerd.log" >&2; die "throwaway containerd did not start"; }
  for l in "${lines[@]}"; do
    cctr images import "${l%% *}" >/dev/null 2>"$d/import.err" || { cat "$d/import.err" >&2; die "ctr images import ${l%% *} failed"; }
  done
  have=$(cctr images list -q)
  for l in "${lines[@]}"; do
    grep -qxF "${l#* }" <<<"$have" || die "after import, containerd has no image named ${l#* } (it has: $(echo $have))"
  done
  log "containerd imported all ${#lines[@]} archives under their names"
  run_check "$ref_busybox" ok sh -c 'echo ok'
  run_check "$ref_pause" "pause.c v$PAUSE_VERSION" /pause -v
  run_check "$ref_coredns" "CoreDNS-${COREDNS_VERSION#v}" /coredns -version
  run_check "$ref_agnhost" "ALL-OK" sh -c '
    set -e
    /agnhost-2 netexec --http-port=8080 >/dev/null 2>&1 &
    for i in $(seq 50); do curl -fsS -m 1 http://127.0.0.1:8080/hostname >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS http://127.0.0.1:8080/echo?msg=hi | grep -qx hi
    dig -v 2>&1 | grep -q DiG; command -v nslookup nc ss ip iperf bash >/dev/null
    test -f /localhost.crt -a -f /localhost.key -a -d /uploads
    id user-defined-in-image | grep -q "uid=1000(user-defined-in-image).*50000(group-defined-in-image)"
    echo ALL-OK'
  run_check "$ref_dnsutils" "DiG 9" dig -v
  run_check "$ref_twill" "ok" sh -c 'twilld --version >/dev/null && /opt/twill/bin/twill --version >/dev/null && echo ok'
  daemon_check "$ref_httpd" "serve http://127.0.0.1/" curl -fsS -m 2 -o /dev/null http://127.0.0.1/
  daemon_check "$ref_nginx" "serve http://127.0.0.1/" curl -fsS -m 2 -o /dev/null http://127.0.0.1/
  # As uid 65532 with no Corefile CoreDNS serves `whoami` on :53: the file capability works.
  daemon_check "$ref_coredns" "listen on :53 as uid 65532" sh -c 'ss -Hlnu "sport = :53" | grep -q .'
  stop_containerd
  rm -rf "$d"
  rm -f "$cache"/.verified-*; : >"$verified"
  log "verified in a throwaway containerd in $((SECONDS - t)) s"
fi

printf '%s\n' "${lines[@]}"
