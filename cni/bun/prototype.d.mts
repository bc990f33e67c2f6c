// Types for prototype.mjs (plain JS: it is bundled only into the bun-compiled plugin).
export interface FfiType {
  ffi: string;                                           // bun:ffi type name ('i32', 'ptr', ...)
  conv: 'scalar' | 'buffer' | 'cstring' | 'inout-u32';   // how a JS value is passed
}
export interface Prototype {
  name: string;
  returns: FfiType;
  args: FfiType[];
}
export function parsePrototype(proto: string): Prototype;
