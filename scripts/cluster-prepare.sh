# Sourced by scripts/test.sh and scripts/cluster.sh: builds (or reuses) the pinned upstream
# binaries and the images, and exports where they are for the real-cluster suite:
#   TWILL_UPSTREAM_BIN  test/cluster/build.sh's bin directory
#   TWILL_IMAGES        a file of "<oci archive> <image ref>" lines from test/cluster/images.sh
# Not root: the suite skips itself. No Go: a failure in CI, elsewhere a skip with what to install.
if [[ $(id -u) -ne 0 ]]; then
  echo "cluster: not root: the real-cluster suite will skip" >&2
elif ! command -v go >/dev/null; then
  if [[ ${CI:-} == true ]]; then
    echo "cluster: no Go toolchain in CI: the real-cluster suite must build Kubernetes from source (install Go >= 1.24)" >&2
    exit 1
  fi
  echo "cluster: no Go toolchain: the real-cluster suite will skip (install Go >= 1.24 to run it)" >&2
else
  mkdir -p .tmp
  TWILL_UPSTREAM_BIN=$(bash test/cluster/build.sh | tail -n 1)
  # --no-verify: the cluster suite itself runs every image (the check costs ≈40–70 s per rebuild).
  bash test/cluster/images.sh "$TWILL_UPSTREAM_BIN" --no-verify > .tmp/cluster-images.txt
  TWILL_IMAGES=$PWD/.tmp/cluster-images.txt
  export TWILL_UPSTREAM_BIN TWILL_IMAGES
fi
