#!/usr/bin/env bash
# Builds the CNI plugin into ONE self-contained executable, dist/cni/twill (hosts have no Node):
# `bun build --compile` of cni/main.ts (cni/runtime/ says how), or with TWILL_CNI_FFI=koffi with
# koffi's native module embedded.
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
#  - bun (default): cni/runtime/ffi-adapter.ts on the runtime's FFI (≈0.5 ms), so nothing native
#    is embedded at all;
#  - koffi (TWILL_CNI_FFI=koffi): koffi with its native module embedded as a plain file and, on
#    first use, written to a fresh mkdtemp() directory (0700, unpredictable name), dlopen()ed and
#    deleted at once (≈4 ms per run). Not bun's own .node extraction: it reuses a predictable
#    /tmp/.bun-<hash>.node that another local user could plant before twill first runs as root.
ffi=${TWILL_CNI_FFI:-bun}
if [[ $ffi == bun ]]; then
# The FFI signatures of every libc prototype ffi.ts and libc-fs.ts declare, parsed now rather
# than on every run of the plugin (≈0.4 ms per invocation).
node_modules/.bin/bun -e "
  import { readFileSync } from 'node:fs';
  import { parsePrototype } from '$root/cni/runtime/prototype.ts';
  const src = ['lib/netlink/ffi.ts', 'cni/runtime/libc-fs.ts'].map((f) => readFileSync('$root/' + f, 'utf8')).join('\\n');
  const sigs = {};
  for (const m of src.matchAll(/\\.func\\('([^']+)'\\)/g)) sigs[m[1]] = parsePrototype(m[1]);
  if (Object.keys(sigs).length < 5) throw new Error('build-cni: no libc prototypes found in lib/netlink/ffi.ts');
  process.stdout.write(JSON.stringify(sigs));
" >"$work/signatures.json"
# Two bundles in one executable (cni/runtime/bun.ts): hot.js serves ADD, DEL and VERSION, full.js
# everything else. hot.js is bundled on its own first: in one build, a module two entries share
# keeps every export either uses (cmd/index.ts's COMMANDS would come along with CHECK, GC, STATUS).
# As plain CommonJS (target node): an ESM or bun-cjs file here loses its bytecode (≈400 faults more).
rt=$root/cni/runtime/bun.ts
echo "import s from '$work/signatures.json'; import { startHot } from '$rt'; startHot(s);" >"$work/hot.mjs"
echo "import s from '$work/signatures.json'; import { startFull } from '$rt'; startFull(s);" >"$work/full.mjs"
node_modules/.bin/bun build --minify --format=cjs --target=node "$work/hot.mjs" --outfile "$work/hot.js" >/dev/null
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
  node_modules/.bin/bun build "${common[@]}" --compile-jit-policy=100 "$work/hot.js" "$work/full.mjs" --outfile "$work/twill" >/dev/null
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
