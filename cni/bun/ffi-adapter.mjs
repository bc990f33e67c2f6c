// A koffi-compatible libc binding on bun:ffi, for the bun-compiled plugin only (the build entry
// hands it to lib/netlink/ffi.ts through useKoffi()). Why: in the compiled binary, loading
// koffi costs ≈4 ms per invocation (its 1.1 MB native module must be written out and dlopen()ed,
// pulling in libstdc++), against ≈0.5 ms for bun:ffi, which is built into the runtime — and a
// CNI DEL is mostly start-up. Under Node (tests, agent) koffi stays the FFI.
//
// It understands the C prototypes lib/netlink/ffi.ts declares (int/uint32_t/long/unsigned long,
// pointers, `_Inout_ uint32_t *` out-parameters passed as [number], `const char *` strings, and a
// trailing `...` which is dropped: callers pass only the fixed arguments). An unknown type fails
// loudly at bind time, never with a wrong call.
import { dlopen, ptr, read } from 'bun:ffi';
import { parsePrototype } from './prototype.mjs';

function convertArg(conv, v, after) {
  switch (conv) {
    case 'cstring': return Buffer.from(`${v}\0`, 'utf8');
    case 'inout-u32': {
      const cell = new Uint32Array([v[0] >>> 0]);
      after.push(() => { v[0] = cell[0]; });
      return cell;
    }
    case 'buffer': return v === null || v === undefined ? null : v;
    default: return v;
  }
}

const toNumber = (r) => (typeof r === 'bigint' ? Number(r) : r);

/**
 * A subset of koffi's surface: load(path).func(prototype) and errno(). Symbols are compiled on
 * first call, all those declared so far in ONE dlopen (bun:ffi JIT-compiles a trampoline per
 * dlopen call; one batch costs ≈0.3 ms, one call per symbol ≈1 ms in total).
 *
 * `signatures` (prototype string -> parsePrototype() result) is computed by the build
 * (scripts/build-cni.sh) for every prototype lib/netlink/ffi.ts declares: parsing the 16
 * prototypes with regular expressions at run time cost ≈0.4 ms per invocation (fresh regexps,
 * interpreted code). A prototype missing from it is parsed here, so a stale table is only slower.
 */
export function bunKoffi(signatures = {}) {
  let errnoLoc;
  const libs = new Map();            // path -> library: every load() of a path shares one batch
  return {
    load(path) {
      if (!libs.has(path)) libs.set(path, library(path));
      return libs.get(path);
    },
    errno() {
      return errnoLoc ? read.i32(errnoLoc(), 0) : 0;
    },
  };

  function library(path) {
    const pending = new Map();     // name -> prototype, not compiled yet
    const compiled = {};
    const compile = () => {
      const defs = { __errno_location: { args: [], returns: 'ptr' } };
      for (const [name, p] of pending) defs[name] = { args: p.args.map((a) => a.ffi), returns: p.returns.ffi };
      const lib = dlopen(path, defs);
      Object.assign(compiled, lib.symbols);
      errnoLoc ??= lib.symbols.__errno_location;
      pending.clear();
    };
    return {
      func(proto) {
        // Types are checked now; the symbol binds on first call.
        const p = Object.hasOwn(signatures, proto) ? signatures[proto] : parsePrototype(proto);
        if (!compiled[p.name]) pending.set(p.name, p);
        const scalarOnly = p.args.every((a) => a.conv === 'scalar');
        return (...values) => {
          if (!compiled[p.name]) compile();
          const fn = compiled[p.name];
          if (scalarOnly) return toNumber(fn(...values));
          const after = [];
          const conv = p.args.map((a, i) => convertArg(a.conv, values[i], after));
          const buffers = conv.map((c) => (ArrayBuffer.isView(c) ? (c.byteLength === 0 ? null : ptr(c)) : c));
          const r = fn(...buffers);
          for (const f of after) f();
          return toNumber(r);
        };
      },
    };
  }
}
