// A koffi-compatible libc binding on bun:ffi, for the bun-compiled plugin only (bun.ts
// hands it to lib/netlink/ffi.ts through useKoffi()). Why: in the compiled binary, loading
// koffi costs ≈4 ms per invocation (its 1.1 MB native module must be written out and dlopen()ed,
// pulling in libstdc++), against ≈0.5 ms for bun:ffi, which is built into the runtime — and a
// CNI DEL is mostly start-up. Under Node (tests, agent) koffi stays the FFI.
//
// It understands the C prototypes lib/netlink/ffi.ts declares (int/uint32_t/long/unsigned long,
// pointers, `_Inout_ uint32_t *` out-parameters passed as [number], `const char *` strings, and a
// trailing `...` which is dropped: callers pass only the fixed arguments). An unknown type fails
// loudly at bind time, never with a wrong call.
//
// It calls the runtime's native FFI object (Bun.FFI) rather than importing 'bun:ffi': that module
// is a JS layer over the same natives (type-name normalisation and per-call argument wrappers,
// which this adapter does itself) and loading it cost ≈0.3 ms and ≈35 page faults per run.
// Natives expect converted arguments: pointers as numbers (ptr()) or null.
import { parsePrototype, type FfiType, type Prototype } from './prototype.js';

type Native = (...args: unknown[]) => number | bigint;
/** The natives of the runtime's FFI object that this adapter and libc-fs.ts use. */
export interface BunFfiNatives {
  dlopen(path: string, defs: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, Native> } | Error;
  ptr(view: ArrayBufferView, byteOffset?: number): number;
  read: { i32(address: number, byteOffset: number): number };
  CString: new (address: number, byteOffset?: number) => { toString(): string };
}
/** The koffi surface lib/netlink/ffi.ts uses (useKoffi()). */
export interface KoffiSubset { load(path: string): { func(proto: string): LibcFn }; errno(): number }
export type Signatures = Record<string, Prototype>;   // prototype -> parsePrototype(), from the build
type Arg = number | string | ArrayBufferView | number[] | null | undefined;
export type LibcFn = (...args: Arg[]) => number;

/** The runtime's FFI natives (what bun:ffi wraps): dlopen, ptr, read, CString. */
export function bunFfi(): BunFfiNatives {
  const f = (globalThis as { Bun?: { FFI?: BunFfiNatives } }).Bun?.FFI;
  if (!f || typeof f.dlopen !== 'function' || typeof f.ptr !== 'function') {
    throw new Error('bun-ffi adapter: this runtime has no Bun.FFI natives (bun version changed?)');
  }
  return f;
}

/** Bytes for the C strings of one call, reused: a fresh Buffer per string was most of a call's garbage. */
const SCRATCH_BYTES = 4096;
let scratch: Buffer | undefined;

const toNumber = (r: number | bigint): number => (typeof r === 'bigint' ? Number(r) : r);

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
export function bunKoffi(signatures: Signatures = {}): KoffiSubset {
  const { dlopen, ptr, read } = bunFfi();
  let errnoLoc: Native | undefined;
  // Per-call state of the argument converters. Calls are synchronous and never re-enter, so
  // one set serves every function; endCall() resets it once the native call has returned (a
  // converter that threw leaves only scratch offsets and cells the next call resets).
  let used = 0;                      // bytes of `scratch` taken by this call's strings
  let keep: Buffer[] | undefined;    // Buffers that must outlive the call (long strings)
  let cells: [number[], Uint32Array][] | undefined;   // [caller's array, Uint32Array] for _Inout_ uint32_t *
  const endCall = (r: number | bigint): number => {
    if (cells) for (const [v, cell] of cells) v[0] = cell[0]!;
    used = 0;
    keep = undefined;
    cells = undefined;
    return toNumber(r);
  };
  /** A pointer argument: a typed array or Buffer (empty = NULL), null, or a raw address. */
  const bufferArg = (v: Arg) => (v === null || v === undefined ? null : ArrayBuffer.isView(v) ? (v.byteLength === 0 ? null : ptr(v)) : v);
  const cstringArg = (v: unknown): number => {
    const str = `${v}`;
    scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
    if (used + str.length * 3 + 1 <= SCRATCH_BYTES) {
      const len = scratch.write(str, used, 'utf8');
      scratch[used + len] = 0;
      const at = ptr(scratch, used);
      used += len + 1;
      return at;
    }
    const b = Buffer.from(`${str}\0`, 'utf8');
    (keep ??= []).push(b);
    return ptr(b);
  };
  const inoutArg = (v: Arg): number => {
    const cell = new Uint32Array([(v as number[])[0]! >>> 0]);
    (cells ??= []).push([v as number[], cell]);
    return ptr(cell);
  };
  const CONVERTERS: Record<FfiType['conv'], ((v: Arg) => unknown) | undefined> = { buffer: bufferArg, cstring: cstringArg, 'inout-u32': inoutArg, scalar: undefined };

  const libs = new Map<string, ReturnType<typeof library>>();   // path -> library: every load() of a path shares one batch
  return {
    load(path) {
      if (!libs.has(path)) libs.set(path, library(path));
      return libs.get(path)!;
    },
    errno() {
      return errnoLoc ? read.i32(errnoLoc() as number, 0) : 0;
    },
  };

  function library(path: string) {
    const pending = new Map<string, Prototype>();     // name -> prototype, not compiled yet
    const compiled: Record<string, Native> = {};
    const compile = () => {
      const defs: Record<string, { args: string[]; returns: string }> = { __errno_location: { args: [], returns: 'ptr' } };
      for (const [name, p] of pending) defs[name] = { args: p.args.map((a) => a.ffi), returns: p.returns.ffi };
      const lib = dlopen(path, defs);
      if (lib instanceof Error) throw lib;   // the native returns its error instead of throwing
      Object.assign(compiled, lib.symbols);
      errnoLoc ??= lib.symbols.__errno_location;
      pending.clear();
    };
    const bound = (name: string): Native => {
      if (!compiled[name]) compile();
      return compiled[name]!;
    };
    return {
      func(proto: string): LibcFn {
        // Types are checked now; the symbol binds on first call.
        const p = Object.hasOwn(signatures, proto) ? signatures[proto]! : parsePrototype(proto);
        if (!compiled[p.name]) pending.set(p.name, p);
        if (p.args.length > 6) throw new Error(`bun-ffi adapter: ${p.name}: more than 6 arguments`);
        // One fixed-arity wrapper per function, each argument converted only when it is not a
        // plain number. Interpreted (a plugin run never JIT-compiles), a wrapper taking rest
        // arguments and spreading them into the call, with a switch per argument, cost ≈6,000
        // instructions per read() and ≈1,700 per close(); this one ≈2,500 and ≈170.
        const [c0, c1, c2, c3, c4, c5] = p.args.map((a) => CONVERTERS[a.conv]);
        let f: Native | undefined;
        switch (p.args.length) {
          case 0: return () => endCall((f ??= bound(p.name))());
          case 1: return (a) => endCall((f ??= bound(p.name))(c0 ? c0(a) : a));
          case 2: return (a, b) => endCall((f ??= bound(p.name))(c0 ? c0(a) : a, c1 ? c1(b) : b));
          case 3: return (a, b, c) => endCall((f ??= bound(p.name))(c0 ? c0(a) : a, c1 ? c1(b) : b, c2 ? c2(c) : c));
          case 4: return (a, b, c, d) => endCall((f ??= bound(p.name))(c0 ? c0(a) : a, c1 ? c1(b) : b, c2 ? c2(c) : c, c3 ? c3(d) : d));
          case 5: return (a, b, c, d, e) => endCall((f ??= bound(p.name))(c0 ? c0(a) : a, c1 ? c1(b) : b, c2 ? c2(c) : c, c3 ? c3(d) : d, c4 ? c4(e) : e));
          default: return (a, b, c, d, e, g) => endCall((f ??= bound(p.name))(c0 ? c0(a) : a, c1 ? c1(b) : b, c2 ? c2(c) : c, c3 ? c3(d) : d, c4 ? c4(e) : e, c5 ? c5(g) : g));
        }
      },
    };
  }
}
