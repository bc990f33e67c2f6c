#!/usr/bin/env bash
# Builds the CNI plugin into ONE self-contained executable, dist/cni/twill (hosts have no Node):
# `bun build --compile` of cni/main.ts with koffi's native module embedded.
#
# koffi finds its .node file at run time through createRequire() + a computed path, which a
# bundler cannot follow, so the compiled binary would fail with "Cannot find the native Koffi
# module". A bun plugin replaces koffi's loader (src/static.js) with a static require of the
# glibc x64/arm64 .node file, which bun embeds and dlopen()s from memory-backed storage; the
# entry hands koffi to lib/netlink/ffi.ts through useKoffi() behind a lazy getter, so commands
# that never touch the kernel (VERSION, STATUS) do not pay for loading it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${TWILL_CNI_OUT:-dist/cni/twill}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "build-cni: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
native="$root/node_modules/@koromix/koffi-linux-$arch/linux_$arch/koffi.node"
[[ -f $native ]] || { echo "build-cni: $native missing (npm ci?)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/twill-cni-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

cat >"$work/entry.mjs" <<JS
import { useKoffi } from '$root/lib/netlink/ffi.ts';
let k;
const koffi = () => (k ??= require('koffi'));
useKoffi({ load: (p) => koffi().load(p), errno: (...a) => koffi().errno(...a) });
await import('$root/cni/main.ts');
JS

cat >"$work/build.mjs" <<JS
const native = ${native@Q};
const koffiNative = {
  name: 'koffi-native',
  setup(build) {
    build.onLoad({ filter: /koffi[\\\\/]src[\\\\/]koffi[\\\\/]src[\\\\/]static\\.js\$/ }, () => ({
      contents: 'import native from ' + JSON.stringify(native) + '; export function loadStatic() { return native; }',
      loader: 'js',
    }));
  },
};
const r = await Bun.build({
  entrypoints: ['$work/entry.mjs'],
  compile: { outfile: '$work/twill' },
  minify: true,
  sourcemap: 'none',
  plugins: [koffiNative],
});
if (!r.success) { for (const l of r.logs) console.error(l); process.exit(1); }
JS

node_modules/.bin/bun "$work/build.mjs"
chmod 0755 "$work/twill"
# Atomic replace: concurrent builds (two test workers) and running plugins never see a torn file.
cp "$work/twill" "$out.tmp.$$" && mv -f "$out.tmp.$$" "$out"
echo "build-cni: $out ($(du -h "$out" | cut -f1))"
