// Label and field selectors as the API server parses them (the equality-based subset:
// `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma = AND; fields: metadata.name and spec.unschedulable).
// An unsupported selector is a 400 in the real server, so it throws here instead of matching all.
import { isObject, type JsonObject } from './fake-apiserver-patch.js';

export type Matcher = (obj: JsonObject) => boolean;

export class SelectorError extends Error {}

interface Req { key: string; op: '=' | '!=' | 'exists' | '!exists'; value: string }

function parse(selector: string): Req[] {
  const reqs: Req[] = [];
  for (const raw of selector.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*([^=!\s]*)$/.exec(part))) {
      reqs.push({ key: m[1]!, op: m[2] === '!=' ? '!=' : '=', value: m[3]! });
    } else if ((m = /^!([^=!\s]+)$/.exec(part))) {
      reqs.push({ key: m[1]!, op: '!exists', value: '' });
    } else if ((m = /^([^=!\s]+)$/.exec(part))) {
      reqs.push({ key: m[1]!, op: 'exists', value: '' });
    } else {
      throw new SelectorError(`unable to parse requirement ${JSON.stringify(part)}`);
    }
  }
  return reqs;
}

function test(req: Req, value: string | undefined): boolean {
  switch (req.op) {
    case '=': return value === req.value;
    case '!=': return value !== req.value;
    case 'exists': return value !== undefined;
    case '!exists': return value === undefined;
  }
}

export function labelMatcher(selector: string | null): Matcher {
  if (!selector) return () => true;
  const reqs = parse(selector);
  return (obj) => {
    const meta = obj['metadata'];
    const labels = isObject(meta) && isObject(meta['labels']) ? meta['labels'] : {};
    return reqs.every((r) => {
      const v = labels[r.key];
      return test(r, typeof v === 'string' ? v : undefined);
    });
  };
}

const FIELDS: Record<string, (o: JsonObject) => string | undefined> = {
  'metadata.name': (o) => {
    const m = o['metadata'];
    return isObject(m) && typeof m['name'] === 'string' ? m['name'] : undefined;
  },
  'spec.unschedulable': (o) => {
    const s = o['spec'];
    return String(isObject(s) && s['unschedulable'] === true);
  },
};

export function fieldMatcher(selector: string | null): Matcher {
  if (!selector) return () => true;
  const reqs = parse(selector);
  for (const r of reqs) {
    if (!(r.key in FIELDS) || r.op === 'exists' || r.op === '!exists') {
      throw new SelectorError(`field label not supported: ${r.key}`);
    }
  }
  return (obj) => reqs.every((r) => test(r, FIELDS[r.key]!(obj)));
}
