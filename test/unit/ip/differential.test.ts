// Differential tests: the live address, MAC and prefix code against verbatim copies of the
// implementations it replaced (reference-parsers.ts), on generated inputs. Results, thrown
// error texts and error fields must be identical; the counts check the inputs cover both the
// accepted and the rejected side, so the comparison cannot pass by seeing only one of them.
import { describe, expect, it } from 'vitest';
import * as addr from '../../../lib/ip/addr.js';
import * as prefix from '../../../lib/ip/prefix.js';
import * as mac from '../../../lib/ip/mac.js';

const live = { ...addr, ...prefix, ...mac };
import * as ref from './reference-parsers.js';
import { Gen, IP_FIXED, MAC_FIXED, differences, ipTextFrom, macText, mutate, prefixText } from './gen-inputs.js';

/** What a call did: its value, or the error it threw (class, text and validation fields). */
function outcome(f: () => unknown): unknown {
  try {
    return { returned: f() };
  } catch (e) {
    const err = e as Error & { code?: unknown; field?: unknown; value?: unknown; rule?: unknown };
    return { threw: { class: err.constructor.name, message: err.message, code: err.code, field: err.field, value: err.value, rule: err.rule } };
  }
}

function* generated(seed: number, n: number, make: (g: Gen) => string, fixed: readonly string[]): Generator<string> {
  yield* fixed;
  const g = new Gen(seed);
  for (let i = 0; i < n; i++) yield make(g);
}

const NON_STRINGS: unknown[] = [undefined, null, 5, 10n, {}, ['1.2.3.4'], true];

describe('addresses: live vs reference', () => {
  const inputs = [...generated(1, 20_000, ipTextFrom, IP_FIXED)];

  it('covers accepted v4, accepted v6 and rejected texts', () => {
    const fams = inputs.map((s) => ref.tryParseIp(s)?.family ?? 0);
    for (const f of [0, 4, 6]) expect(fams.filter((x) => x === f).length).toBeGreaterThan(2000);
  });

  it('tryParseIp, parseIp (every family restriction) and canonicalIp agree', () => {
    expect(differences(inputs, (s) => [live.tryParseIp(s), ref.tryParseIp(s)])).toEqual([]);
    for (const fam of [undefined, 4, 6] as const) {
      expect(differences(inputs, (s) => [outcome(() => live.parseIp(s, 'PublicIP', fam)), outcome(() => ref.parseIp(s, 'PublicIP', fam))])).toEqual([]);
    }
    expect(differences(inputs, (s) => [outcome(() => live.canonicalIp(s)), outcome(() => ref.canonicalIp(s))])).toEqual([]);
    expect(differences(NON_STRINGS, (s) => [outcome(() => live.tryParseIp(s as string)), outcome(() => ref.tryParseIp(s as string))])).toEqual([]);
  });

  it('formatIp agrees on every value, including ones wider than the family or negative', () => {
    const g = new Gen(2);
    const values: ref.IpAddr[] = [];
    for (let i = 0; i < 20_000; i++) {
      const family = g.chance(0.5) ? 4 : 6;
      const bits = g.pick([8, 16, 32, 32, 32, 33, 64, 128, 128, 129]);
      const v = g.bigint(bits);
      values.push({ family, value: g.chance(0.05) ? -v : v });
    }
    expect(differences(values, (ip) => [outcome(() => live.formatIp(ip)), outcome(() => ref.formatIp(ip))])).toEqual([]);
  });
});

describe('MACs: live vs reference', () => {
  const inputs = [...generated(3, 40_000, (g) => g.chance(0.85) ? macText(g) : mutate(g, macText(g)), MAC_FIXED)];

  it('covers canonical, non-canonical accepted and rejected texts', () => {
    const kinds = inputs.map((s) => { const c = ref.canonicalMac(s); return c === undefined ? 0 : c === s ? 1 : 2; });
    for (const k of [0, 1, 2]) expect(kinds.filter((x) => x === k).length).toBeGreaterThan(3000);
  });

  it('parseMac, canonicalMac, macProblem and isValidUnicastMac agree', () => {
    expect(differences(inputs, (s) => [live.parseMac(s), ref.parseMac(s)])).toEqual([]);
    expect(differences(inputs, (s) => [live.canonicalMac(s), ref.canonicalMac(s)])).toEqual([]);
    expect(differences(inputs, (s) => [live.macProblem(s), ref.macProblem(s)])).toEqual([]);
    expect(differences(inputs, (s) => [live.isValidUnicastMac(s), ref.isValidUnicastMac(s)])).toEqual([]);
    expect(differences(NON_STRINGS, (s) => [outcome(() => live.canonicalMac(s as string)), outcome(() => ref.canonicalMac(s as string))])).toEqual([]);
  });

  it('formatMac agrees on byte arrays of any length (and on Buffers)', () => {
    const g = new Gen(4);
    const arrays: Uint8Array[] = [];
    for (let i = 0; i < 5_000; i++) {
      const a = Uint8Array.from({ length: g.int(9) }, () => g.int(256));
      arrays.push(g.chance(0.2) ? Buffer.from(a) : a);
    }
    expect(differences(arrays, (a) => [live.formatMac(a), ref.formatMac(a)])).toEqual([]);
  });
});

describe('prefixes: live vs reference', () => {
  const inputs = [...generated(5, 12_000, prefixText, ['10.244.3.0/24', '10.244.3.5/24', 'fd00::/64', 'FD00:0000::/64', '0.0.0.0/0', '::/0', '1.2.3.4/32', '10.0.0.0/08', '10.0.0.0/'])];
  const optionSets: ref.ParsePrefixOptions[] = [{}, { family: 4 }, { family: 6 }, { normalize: true }, { field: 'Network', family: 4, normalize: true }, { family: 6, normalize: false }];

  it('covers accepted v4, accepted v6, host bits set and other rejections', () => {
    const kinds = inputs.map((s) => {
      const r = outcome(() => ref.parsePrefix(s)) as { returned?: ref.Prefix; threw?: { message: string } };
      return r.returned ? r.returned.family : r.threw!.message.includes('host bits') ? 'host' : 'bad';
    });
    for (const k of [4, 6, 'host', 'bad']) expect(kinds.filter((x) => x === k).length).toBeGreaterThan(1000);
  });

  it('parsePrefix and tryParsePrefix agree under every option set, errors included', () => {
    for (const opts of optionSets) {
      expect(differences(inputs, (s) => [outcome(() => live.parsePrefix(s, opts)), outcome(() => ref.parsePrefix(s, opts))])).toEqual([]);
      expect(differences(inputs, (s) => [live.tryParsePrefix(s, opts), ref.tryParsePrefix(s, opts)])).toEqual([]);
    }
    expect(differences(inputs, (s) => [outcome(() => live.parsePrefix(s)), outcome(() => ref.parsePrefix(s))])).toEqual([]);
    expect(differences(NON_STRINGS, (s) => [outcome(() => live.parsePrefix(s as string)), outcome(() => ref.parsePrefix(s as string))])).toEqual([]);
    expect(differences(NON_STRINGS, (s) => [live.tryParsePrefix(s as string), ref.tryParsePrefix(s as string)])).toEqual([]);
    // A broken options argument is swallowed by tryParsePrefix in both.
    expect(live.tryParsePrefix('10.0.0.0/8', null as unknown as ref.ParsePrefixOptions)).toBe(ref.tryParsePrefix('10.0.0.0/8', null as unknown as ref.ParsePrefixOptions));
  });

  it('makePrefix and formatPrefix agree, also for lengths outside the family', () => {
    const g = new Gen(6);
    const cases: [ref.IpAddr, number][] = [];
    for (let i = 0; i < 10_000; i++) {
      const family = g.chance(0.5) ? 4 : 6;
      cases.push([{ family, value: g.bigint(family === 4 ? 32 : 128) }, g.chance(0.95) ? g.int(family === 4 ? 33 : 129) : g.pick([-1, 129, 200, 1.5])]);
    }
    expect(differences(cases, ([ip, len]) => [outcome(() => live.makePrefix(ip, len)), outcome(() => ref.makePrefix(ip, len))])).toEqual([]);
    expect(differences(cases, ([ip, len]) => [outcome(() => live.formatPrefix(ref.makePrefix(ip, len))), outcome(() => ref.formatPrefix(ref.makePrefix(ip, len)))])).toEqual([]);
  });
});
