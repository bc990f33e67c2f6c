// Typed field access for a JSON object, matching names case-insensitively the way Go's
// encoding/json does (so every net-conf.json flannel accepts, e.g. {"Backend":{"type":"vxlan"}},
// is accepted here). Unknown keys are reported to the logger, never fatal: a newer config must
// not take a cluster down. Every error names the field (with its path), the value and the rule.
import { invalid } from '../errors.js';

export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export type Fields = ReadonlyMap<string, unknown>;

/** Reads `obj` against the known key names; unknown keys are warned about, duplicates rejected. */
export function readFields(obj: unknown, known: readonly string[], path: string, log?: WarnLogger): Fields {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw invalid(path || 'net-conf.json', obj, 'must be a JSON object');
  }
  const byLower = new Map(known.map((k) => [k.toLowerCase(), k]));
  const out = new Map<string, unknown>();
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(obj)) {
    const name = byLower.get(key.toLowerCase());
    if (name === undefined) {
      log?.warn({ field: join(path, key) }, `net-conf.json: unknown key ${JSON.stringify(join(path, key))} ignored (known: ${known.join(', ')})`);
      continue;
    }
    const prev = seen.get(name);
    if (prev !== undefined) throw invalid(join(path, key), value, `duplicate of ${JSON.stringify(join(path, prev))} (names are case-insensitive)`);
    seen.set(name, key);
    out.set(name, value);
  }
  return out;
}

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

export function optInt(f: Fields, path: string, name: string, min: number, max: number): number | undefined {
  const v = f.get(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(join(path, name), v, `must be an integer ${min}..${max}`);
  }
  return v;
}

export function optBool(f: Fields, path: string, name: string): boolean | undefined {
  const v = f.get(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(join(path, name), v, 'must be true or false');
  return v;
}

export function optString(f: Fields, path: string, name: string, example: string): string | undefined {
  const v = f.get(name);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalid(join(path, name), v, `must be a string, e.g. ${JSON.stringify(example)}`);
  return v;
}
