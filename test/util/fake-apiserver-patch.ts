// The three patch dialects the Kubernetes API server accepts, applied to plain JSON objects, as
// the fake API server needs them. Why our own: the real semantics are small for Nodes (maps merge,
// conditions/addresses merge by `type`, `$patch: delete` removes a keyed item) and depending on a
// Go-compatible strategic-merge library would hide exactly what the tests are meant to pin down.
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export type PatchType = 'merge' | 'strategic' | 'json';

export const PATCH_CONTENT_TYPES: Record<string, PatchType> = {
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/json-patch+json': 'json',
};

/** A patch the server must refuse with 422 (or 400): `message` becomes the Status message. */
export class PatchError extends Error {
  readonly status: number;
  constructor(message: string, status = 422) {
    super(message);
    this.status = status;
  }
}

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/**
 * Lists that a strategic merge patch merges by a key instead of replacing (from the Node and
 * ObjectMeta Go struct tags `patchStrategy:"merge" patchMergeKey:"…"`). Path = dotted field path.
 */
const MERGE_KEYS: Record<string, string> = {
  'status.conditions': 'type',
  'status.addresses': 'type',
  'metadata.ownerReferences': 'uid',
};

/** Kubernetes strategic merge patch, the subset that Node objects use. */
export function strategicMergePatch(target: Json, patch: Json, path = ''): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch['$patch'] === 'replace') {
    const rest = { ...patch };
    delete rest['$patch'];
    return clone(rest);
  }
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') || k.startsWith('$retainKeys') || k === '$patch') continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => d === x));
      continue;
    }
    const childPath = path === '' ? k : `${path}.${k}`;
    const mergeKey = MERGE_KEYS[childPath];
    if (v === null) delete out[k];
    else if (mergeKey !== undefined && Array.isArray(v)) out[k] = mergeList(out[k], v, mergeKey, childPath);
    else out[k] = strategicMergePatch(out[k] ?? null, v, childPath);
  }
  return out;
}

function mergeList(current: Json | undefined, patch: Json[], key: string, path: string): Json[] {
  const out: Json[] = Array.isArray(current) ? [...current] : [];
  for (const item of patch) {
    if (!isObject(item) || item[key] === undefined) {
      throw new PatchError(`${path}: every item of a strategic merge list needs the merge key "${key}"`);
    }
    const idx = out.findIndex((x) => isObject(x) && x[key] === item[key]);
    if (item['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = strategicMergePatch(out[idx] ?? null, item, path);
    else out.push(strategicMergePatch(null, item, path));
  }
  return out;
}

interface JsonPatchOp { op: string; path: string; value?: Json; from?: string }

/** RFC 6902 JSON patch (add, remove, replace, test, move, copy). */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations', 400);
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw['op'] !== 'string' || typeof raw['path'] !== 'string') {
      throw new PatchError(`invalid JSON patch operation ${JSON.stringify(raw)}`, 400);
    }
    doc = applyOp(doc, raw as unknown as JsonPatchOp);
  }
  return doc;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`JSON pointer ${JSON.stringify(path)} must start with "/"`, 400);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: Json, tokens: string[]): Json | undefined {
  let cur: Json | undefined = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else return undefined;
  }
  return cur;
}

function applyOp(doc: Json, op: JsonPatchOp): Json {
  const tokens = pointer(op.path);
  switch (op.op) {
    case 'add': return setAt(doc, tokens, op.value ?? null, 'add');
    case 'replace':
      if (getAt(doc, tokens) === undefined) throw new PatchError(`replace: path ${op.path} does not exist`);
      return setAt(doc, tokens, op.value ?? null, 'replace');
    case 'remove':
      if (getAt(doc, tokens) === undefined) throw new PatchError(`remove: path ${op.path} does not exist`);
      return removeAt(doc, tokens);
    case 'test':
      if (JSON.stringify(getAt(doc, tokens)) !== JSON.stringify(op.value)) throw new PatchError(`test failed at ${op.path}`);
      return doc;
    case 'move':
    case 'copy': {
      const from = pointer(op.from ?? '');
      const v = getAt(doc, from);
      if (v === undefined) throw new PatchError(`${op.op}: from ${String(op.from)} does not exist`);
      const base = op.op === 'move' ? removeAt(doc, from) : doc;
      return setAt(base, tokens, clone(v), 'add');
    }
    default:
      throw new PatchError(`unsupported JSON patch op ${JSON.stringify(op.op)}`, 400);
  }
}

function setAt(doc: Json, tokens: string[], value: Json, mode: 'add' | 'replace'): Json {
  if (tokens.length === 0) return clone(value);
  const parent = getAt(doc, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new PatchError(`array index ${last} out of range`);
    if (mode === 'add') parent.splice(i, 0, clone(value));
    else parent[i] = clone(value);
  } else if (isObject(parent)) {
    parent[last] = clone(value);
  } else {
    throw new PatchError(`parent of /${tokens.join('/')} does not exist`);
  }
  return doc;
}

function removeAt(doc: Json, tokens: string[]): Json {
  const parent = getAt(doc, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else if (isObject(parent)) delete parent[last];
  return doc;
}

/** Applies a patch body of the given type. */
export function applyPatch(type: PatchType, target: Json, patch: Json): Json {
  switch (type) {
    case 'merge': return mergePatch(target, patch);
    case 'strategic': return strategicMergePatch(target, patch);
    case 'json': return jsonPatch(target, patch);
  }
}
