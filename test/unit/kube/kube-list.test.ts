// ListScanner (lib/subnet/kube-list.ts): a list answer cut into any chunks yields exactly the
// items and the skeleton JSON.parse would, strings with escapes, braces and brackets inside.
import { describe, expect, it } from 'vitest';
import { ListScanner } from '../../../lib/subnet/kube-list.js';

function scan(text: string, cuts: number[]): { items: unknown[]; rest: Record<string, unknown> } {
  const items: unknown[] = [];
  const s = new ListScanner((x) => items.push(x));
  let from = 0;
  for (const at of [...cuts, text.length]) { s.push(text.slice(from, at)); from = at; }
  return { items, rest: s.end() };
}

/** A deterministic pseudo-random sequence (xorshift), so a failure is reproducible. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x1_0000_0000; };
}

const tricky = ['plain', 'with "quotes"', 'back\\slash\\', 'braces {[}]', 'comma, colon: "items":[', 'unicode é ✓ \u2028', '\\"', ''];

function node(i: number, r: () => number) {
  const pick = () => tricky[Math.floor(r() * tricky.length)]!;
  return {
    metadata: { name: `n${i}`, resourceVersion: String(100 + i), annotations: { 'twill.io/x': pick(), [pick() || 'k']: pick() }, managedFields: [{ fieldsV1: { 'f:metadata': { 'f:annotations': {} } } }] },
    spec: { podCIDR: `10.0.${i}.0/24`, podCIDRs: [`10.0.${i}.0/24`], taints: [] },
    status: { addresses: [{ type: 'InternalIP', address: `192.0.2.${i}` }], images: [{ names: [pick(), pick()] }], nodeInfo: { n: null, t: true, f: 1.5e3 } },
  };
}

describe('ListScanner', () => {
  it('cuts items out of any chunking, with metadata before or after them', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const items = Array.from({ length: Math.floor(r() * 6) }, (_, i) => node(i, r));
      const metaFirst = r() < 0.5;
      const list = metaFirst
        ? { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '4242', continue: '' }, items }
        : { items, kind: 'NodeList', metadata: { resourceVersion: '4242' } };
      const text = JSON.stringify(list, null, r() < 0.3 ? 1 : undefined);
      const cuts = Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * text.length)).sort((a, b) => a - b);
      const got = scan(text, cuts);
      expect(got.items, `seed ${seed}`).toEqual(items);
      expect(got.rest, `seed ${seed}`).toEqual({ ...list, items: [] });
    }
  });

  it('one character at a time, and an empty or null items list', () => {
    const text = JSON.stringify({ kind: 'NodeList', metadata: { resourceVersion: '7' }, items: [node(1, rng(3)), node(2, rng(4))] });
    expect(scan(text, Array.from({ length: text.length - 1 }, (_, i) => i + 1)).items).toHaveLength(2);
    expect(scan('{"metadata":{"resourceVersion":"1"},"items":[]}', [])).toEqual({ items: [], rest: { metadata: { resourceVersion: '1' }, items: [] } });
    expect(scan('{"metadata":{"resourceVersion":"1"},"items":null}', [5])).toEqual({ items: [], rest: { metadata: { resourceVersion: '1' }, items: null } });
  });

  it('an "items" key nested deeper is not the list', () => {
    const text = JSON.stringify({ metadata: { items: [{ a: 1 }] }, items: [{ b: 2 }] });
    expect(scan(text, [10, 20])).toEqual({ items: [{ b: 2 }], rest: { metadata: { items: [{ a: 1 }] }, items: [] } });
  });

  it('a truncated answer or a broken item throws', () => {
    const text = JSON.stringify({ metadata: { resourceVersion: '1' }, items: [{ a: 1 }, { b: 2 }] });
    expect(() => scan(text.slice(0, text.length - 3), [])).toThrow(/ended early/);
    expect(() => scan('{"items":[{"a":1,}]}', [])).toThrow(SyntaxError);
    expect(() => scan('[1]', [])).toThrow(/not a JSON object/);
  });
});
