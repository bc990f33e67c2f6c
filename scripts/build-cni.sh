#!/usr/bin/env bash
# Builds the CNI plugin into ONE self-contained executable, dist/cni/twill (hosts have no Node):
# `bun build --compile` of cni/main.ts with koffi's native module embedded.
#
# koffi finds its .node file at run time through createRequire() + a computed path, which a
# bundler cannot follow, so the compiled binary would fail with "Cannot find the native Koffi
# module" on a host without node_modules (and silently use the checkout's node_modules here).
# A bun plugin replaces koffi's loader (src/static.js and src/static.cjs) with one that loads the
# glibc .node file embedded by the entry below.
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

mkdir -p .tmp
work=$(mktemp -d "$root/.tmp/cni-build.XXXXXX")   # inside the repo: the entry resolves node_modules
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

# The entry hands lib/netlink/ffi.ts its FFI through useKoffi(), lazily (VERSION, STATUS and
# install never bind libc):
#  - bun (default): cni/bun/ffi-adapter.mjs on bun:ffi, built into the runtime (≈0.5 ms), so
#    nothing native is embedded at all;
#  - koffi (TWILL_CNI_FFI=koffi): koffi with its native module embedded as a plain file and, on
#    first use, written to a fresh mkdtemp() directory (0700, unpredictable name), dlopen()ed and
#    deleted at once (≈4 ms per run). Not bun's own .node extraction: it reuses a predictable
#    /tmp/.bun-<hash>.node that another local user could plant before twill first runs as root.
ffi=${TWILL_CNI_FFI:-bun}
if [[ $ffi == bun ]]; then
# The bun:ffi signatures of every libc prototype ffi.ts and libc-fs.mjs declare, parsed now
# rather than on every run of the plugin (≈0.4 ms per invocation).
node --input-type=module -e "
  import { readFileSync } from 'node:fs';
  import { parsePrototype } from '$root/cni/bun/prototype.mjs';
  const src = ['lib/netlink/ffi.ts', 'cni/bun/libc-fs.mjs'].map((f) => readFileSync('$root/' + f, 'utf8')).join('\\n');
  const sigs = {};
  for (const m of src.matchAll(/\\.func\\('([^']+)'\\)/g)) sigs[m[1]] = parsePrototype(m[1]);
  if (Object.keys(sigs).length < 5) throw new Error('build-cni: no libc prototypes found in lib/netlink/ffi.ts');
  process.stdout.write(JSON.stringify(sigs));
" >"$work/signatures.json"
# Two bundles in one executable: ADD, DEL and VERSION (a runtime passes no arguments) run cni/hot.ts,
# bundled without the other commands and the installer — the executable loads its bundle's
# bytecode on every start, so unused code still costs page faults and CPU; everything else runs
# cni/main.ts from the second bundle (full.js, imported by a name the bundler cannot follow).
# Each bundle hands its own copy of lib/netlink/ffi.ts and cni/sys/fs.ts the libc bindings.
setup="import { getLibc, useKoffi } from '$root/lib/netlink/ffi.ts';
import { usePluginFs } from '$root/cni/sys/fs.ts';
import { bunKoffi } from '$root/cni/bun/ffi-adapter.mjs';
import { libcFs } from '$root/cni/bun/libc-fs.mjs';
import signatures from '$work/signatures.json';
const k = bunKoffi(signatures);
useKoffi(k);
usePluginFs(libcFs(k, getLibc));"
cat >"$work/entry.mjs" <<JS
$setup
const cmd = process.env.CNI_COMMAND;
const sub = process.argv[2];
if ((cmd === 'ADD' || cmd === 'DEL' || cmd === 'VERSION') && sub !== 'install' && sub !== '--version' && sub !== 'version') {
  import('$root/cni/hot.ts');
} else {
  import(['./full', 'js'].join('.'));
}
JS
cat >"$work/full.mjs" <<JS
$setup
import('$root/cni/main.ts');
JS
elif [[ $ffi == koffi ]]; then
cat >"$work/entry.mjs" <<JS
import nativeFile from ${native@Q} with { type: 'file' };
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { useKoffi } from '$root/lib/netlink/ffi.ts';
globalThis.__twillKoffiNative = () => {
  const dir = mkdtempSync((process.env.TMPDIR || '/tmp') + '/twill-ffi-');
  try {
    const path = dir + '/koffi.node';
    writeFileSync(path, readFileSync(nativeFile), { mode: 0o700 });
    const m = { exports: {} };
    process.dlopen(m, path);
    return m.exports;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
let k;
const koffi = () => (k ??= require('koffi'));
useKoffi({ load: (p) => koffi().load(p), errno: (...a) => koffi().errno(...a) });
import('$root/cni/main.ts');
JS
else
  echo "build-cni: TWILL_CNI_FFI=$ffi: must be bun or koffi" >&2; exit 1
fi

# Start-up is most of a CNI call, so: bytecode (no parse/compile of the bundle at run time),
# a higher JIT tier-up threshold (a 15 ms process never profits from the optimising JITs:
# measured ≈20 % less CPU per ADD), and no .env / bunfig.toml autoloading (a plugin must not
# change behaviour with the runtime's working directory, and it saves the directory scans).
common=(--compile --minify --bytecode --format=cjs --no-compile-autoload-dotenv --no-compile-autoload-bunfig)
if [[ $ffi == bun ]]; then
  node_modules/.bin/bun build "${common[@]}" --compile-jit-policy=100 "$work/entry.mjs" "$work/full.mjs" --outfile "$work/twill" >/dev/null
else
cat >"$work/build.mjs" <<JS
const koffiNative = {
  name: 'koffi-native',
  setup(build) {
    // koffi ships its loader twice: src/static.js (import) and src/static.cjs (require).
    build.onLoad({ filter: /koffi[\\\\/]src[\\\\/]koffi[\\\\/]src[\\\\/]static\\.c?js\$/ }, (args) => ({
      contents: args.path.endsWith('.cjs')
        ? 'module.exports = { loadStatic: () => globalThis.__twillKoffiNative() };'
        : 'export function loadStatic() { return globalThis.__twillKoffiNative(); }',
      loader: 'js',
    }));
  },
};
const r = await Bun.build({
  entrypoints: ['$work/entry.mjs'],
  compile: { outfile: '$work/twill', autoloadDotenv: false, autoloadBunfig: false },
  minify: true,
  bytecode: true,
  format: 'cjs',
  plugins: [koffiNative],
});
if (!r.success) { for (const l of r.logs) console.error(l); process.exit(1); }
JS
  node_modules/.bin/bun "$work/build.mjs"
fi
chmod 0755 "$work/twill"
# Atomic replace: concurrent builds (two test workers) and running plugins never see a torn file.
cp "$work/twill" "$out.tmp.$$" && mv -f "$out.tmp.$$" "$out"
echo "build-cni: $out ($(du -h "$out" | cut -f1))"
