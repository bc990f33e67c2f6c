// Unknown-field check for manifests, the part of `kubectl apply --validate=strict` that
// kubernetes-models' validate() leaves out (its JSON schemas allow extra properties, so a typo
// such as `imagePulPolicy` would pass). The field lists come from the same package's .d.ts
// interfaces, read as text: one `export interface` per file, properties `"name"?: Type;`, types
// that are another interface (imported), Array<…>, a string-keyed map, or a leaf.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

type TypeRef =
  | { kind: 'ref'; file: string }
  | { kind: 'array'; of: TypeRef }
  | { kind: 'map'; of: TypeRef }
  | { kind: 'leaf' };

const cache = new Map<string, Map<string, TypeRef> | null>();

function resolveImport(fromFile: string, spec: string, nodeModules: string): string {
  return (spec.startsWith('.') ? join(dirname(fromFile), spec) : join(nodeModules, spec)) + '.d.ts';
}

function parseType(text: string, imports: Map<string, string>): TypeRef {
  const t = text.replace(/;$/, '').trim();
  const arr = /^Array<(.+)>$/.exec(t);
  if (arr) return { kind: 'array', of: parseType(arr[1]!, imports) };
  const file = imports.get(t);
  return file ? { kind: 'ref', file } : { kind: 'leaf' };
}

/** Properties of the file's interface, or null when the file declares a type alias (a leaf). */
function shape(file: string, nodeModules: string): Map<string, TypeRef> | null {
  const hit = cache.get(file);
  if (hit !== undefined) return hit;
  const lines = readFileSync(file, 'utf8').split('\n');
  const imports = new Map<string, string>();
  for (const l of lines) {
    const m = /^import \{ (\w+) \} from "([^"]+)";/.exec(l);
    if (m && m[2] !== '@kubernetes-models/base') imports.set(m[1]!, resolveImport(file, m[2]!, nodeModules));
  }
  const start = lines.findIndex((l) => /^export interface I\w+/.test(l));
  if (start < 0) { cache.set(file, null); return null; }
  const props = new Map<string, TypeRef>();
  for (let i = start + 1; i < lines.length && lines[i] !== '}'; i++) {
    const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]!);
    if (!m) continue;
    if (m[2] === '{') {
      const v = /^ {8}\[key: string\]: (.*)$/.exec(lines[i + 1] ?? '');
      props.set(m[1]!, { kind: 'map', of: v ? parseType(v[1]!, imports) : { kind: 'leaf' } });
    } else {
      props.set(m[1]!, parseType(m[2]!, imports));
    }
  }
  cache.set(file, props);
  return props;
}

function walk(v: unknown, t: TypeRef, path: string, nodeModules: string, out: string[]): void {
  if (v === null || v === undefined || t.kind === 'leaf') return;
  if (t.kind === 'array') { if (Array.isArray(v)) v.forEach((x, i) => walk(x, t.of, `${path}[${i}]`, nodeModules, out)); return; }
  if (typeof v !== 'object' || Array.isArray(v)) return;
  if (t.kind === 'map') { for (const [k, x] of Object.entries(v)) walk(x, t.of, `${path}.${k}`, nodeModules, out); return; }
  const props = shape(t.file, nodeModules);
  if (!props) return;
  for (const [k, x] of Object.entries(v)) {
    const p = props.get(k);
    if (!p) out.push(`${path}.${k}: unknown field`);
    else walk(x, p, `${path}.${k}`, nodeModules, out);
  }
}

/** Paths of fields the interface in `dtsFile` does not declare (empty when the object is clean). */
export function unknownFields(obj: unknown, dtsFile: string, nodeModules: string, root = '$'): string[] {
  const out: string[] = [];
  walk(obj, { kind: 'ref', file: dtsFile }, root, nodeModules, out);
  return out;
}
