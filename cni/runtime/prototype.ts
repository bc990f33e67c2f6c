// C prototype strings (koffi syntax, as lib/netlink/ffi.ts writes them) -> bun:ffi signatures.
// Pure, so the unit tests check under Node that every prototype ffi.ts declares is understood:
// a new libc binding there cannot silently break the compiled plugin.

export interface FfiType {
  ffi: string;                                           // bun:ffi type name ('i32', 'ptr', ...)
  conv: 'scalar' | 'buffer' | 'cstring' | 'inout-u32';   // how a JS value is passed
}
export interface Prototype { name: string; returns: FfiType; args: FfiType[] }

const SCALARS: Record<string, string> = {
  int: 'i32', 'unsigned int': 'u32', unsigned: 'u32', long: 'i64_fast', 'unsigned long': 'u64_fast',
  'long long': 'i64_fast', 'unsigned long long': 'u64_fast', short: 'i16', 'unsigned short': 'u16',
  char: 'i8', 'unsigned char': 'u8', bool: 'bool', float: 'f32', double: 'f64',
  int8_t: 'i8', uint8_t: 'u8', int16_t: 'i16', uint16_t: 'u16', int32_t: 'i32', uint32_t: 'u32',
  int64_t: 'i64_fast', uint64_t: 'u64_fast', size_t: 'u64_fast', ssize_t: 'i64_fast', void: 'void',
};

/** "unsigned long len" -> "unsigned long"; "int" -> "int" (the parameter name is optional). */
function scalarName(t: string): string | undefined {
  const norm = t.replace(/\s+/g, ' ');
  if (Object.hasOwn(SCALARS, norm)) return norm;
  const noName = norm.replace(/ \w+$/, '');
  return Object.hasOwn(SCALARS, noName) ? noName : undefined;
}

function parseType(raw: string, where: string): FfiType {
  let t = raw.replace(/\b(const|_In_|_Out_)\b/g, ' ').trim();
  const inout = /\b_Inout_\b/.test(t);
  t = t.replace(/\b_Inout_\b/, '').trim();
  if (t.includes('*')) {
    const base = t.replace(/\*/g, '').trim().replace(/\s+\w+$/, '').trim() || t.replace(/\*.*/, '').trim();
    if (inout) {
      if (base !== 'uint32_t' && !base.startsWith('uint32_t')) throw new Error(`bun-ffi adapter: ${where}: only _Inout_ uint32_t * is supported`);
      return { ffi: 'ptr', conv: 'inout-u32' };
    }
    return { ffi: 'ptr', conv: base.startsWith('char') ? 'cstring' : 'buffer' };
  }
  const name = scalarName(t);
  const ffi = name === undefined ? undefined : SCALARS[name];
  if (!ffi) throw new Error(`bun-ffi adapter: ${where}: unsupported type ${JSON.stringify(raw)}`);
  return { ffi, conv: 'scalar' };
}

/** "int open(const char *path, int flags, ...)" -> { name, returns, args } */
export function parsePrototype(proto: string): Prototype {
  const m = /^\s*(.+?)\s*\b(\w+)\s*\((.*)\)\s*$/.exec(proto);
  if (!m) throw new Error(`bun-ffi adapter: cannot parse ${JSON.stringify(proto)}`);
  const [, ret, name, argList] = m as unknown as [string, string, string, string];
  const args = argList.split(',').map((a) => a.trim()).filter((a) => a !== '' && a !== '...' && a !== 'void')
    .map((a, i) => parseType(a, `${name} argument ${i + 1}`));
  return { name, returns: parseType(ret, `${name} return`), args };
}

