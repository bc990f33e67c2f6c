// nftables backend against the real kernel, each test in a fresh netns (rules applied inside it
// through `ip netns exec`).
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createTrafficRules, removeAllTrafficRules, type TrafficRules, type TrafficSpec } from '../../../agent/traffic/index.js';
import { renderNftTable } from '../../../agent/traffic/nft.js';
import { normalizeSpec } from '../../../agent/traffic/rules.js';
import { silentLogger } from '../../../lib/log.js';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { addNetns, delNetns, inNs, inNsInput } from './netns.js';

const SPEC: TrafficSpec = { network: '10.244.0.0/16', subnet: '10.244.1.0/24', masquerade: true };

interface Listed {
  tables: string[];
  chains: { name: string; type: string; hook: string; prio: number; policy: string }[];
  rules: Record<string, unknown[][]>;
}

/** `nft -j list ruleset` of the netns, reduced to what the tests compare. */
async function listJson(ns: string, table = 'twill'): Promise<Listed> {
  const j = JSON.parse(await inNs(ns, 'nft', '-j', 'list', 'ruleset')) as { nftables: Record<string, Record<string, unknown>>[] };
  const out: Listed = { tables: [], chains: [], rules: {} };
  for (const item of j.nftables) {
    if (item.table) out.tables.push(`${String(item.table.family)} ${String(item.table.name)}`);
    if (item.chain && item.chain.table === table) {
      const c = item.chain as unknown as Listed['chains'][number];
      out.chains.push({ name: c.name, type: c.type, hook: c.hook, prio: c.prio, policy: c.policy });
    }
    if (item.rule && item.rule.table === table) (out.rules[String(item.rule.chain)] ??= []).push(item.rule.expr as unknown[]);
  }
  return out;
}

const prefix = (addr: string, len: number) => ({ prefix: { addr, len } });
const ipMatch = (field: 'saddr' | 'daddr', op: '==' | '!=', right: unknown) => ({ match: { op, left: { payload: { protocol: 'ip', field } }, right } });

describeRoot('traffic rules: nftables', () => {
  let ns = '';
  let rules: TrafficRules;

  beforeEach(async () => {
    ns = `${uniquePrefix('twt')}nft`;
    await addNetns(ns);
    rules = await createTrafficRules({ logger: silentLogger(), netns: ns });
  });
  afterEach(async () => { await delNetns(ns); });

  it('picks nftables when nft works', () => {
    expect(rules.backend).toBe('nftables');
  });

  it('ensure creates exactly the expected ruleset, and nothing else', async () => {
    await rules.ensure(SPEC);
    const l = await listJson(ns);
    expect(l.tables).toEqual(['inet twill']);
    expect(l.chains).toEqual([
      { name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
      { name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' },
    ]);
    const net = prefix('10.244.0.0', 16);
    expect(l.rules.postrouting).toEqual([
      [{ match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 0x4000] }, right: 0x4000 } }, { return: null }],
      [ipMatch('saddr', '==', net), ipMatch('daddr', '==', net), { return: null }],
      [ipMatch('saddr', '!=', net), ipMatch('daddr', '==', prefix('10.244.1.0', 24)), { return: null }],
      [ipMatch('saddr', '==', net), ipMatch('daddr', '!=', prefix('224.0.0.0', 4)), { masquerade: { flags: 'fully-random' } }],
      [ipMatch('saddr', '!=', net), ipMatch('daddr', '==', net), { masquerade: { flags: 'fully-random' } }],
    ]);
    expect(l.rules.forward).toEqual([
      [ipMatch('saddr', '==', net), { accept: null }],
      [ipMatch('daddr', '==', net), { accept: null }],
    ]);
    // our text is nft's own listing form: check() can compare without a snapshot
    expect(await inNs(ns, 'nft', 'list', 'table', 'inet', 'twill')).toBe(renderNftTable(normalizeSpec(SPEC)));
    expect(await rules.check(SPEC)).toBe(true);
  });

  it('adds the ip6 rules when an IPv6 network is set', async () => {
    const spec = { ...SPEC, ipv6Network: 'fd00:10::/56', ipv6Subnet: 'fd00:10:0:1::/64' };
    await rules.ensure(spec);
    const text = await inNs(ns, 'nft', 'list', 'table', 'inet', 'twill');
    expect(text).toContain('ip6 saddr fd00:10::/56 ip6 daddr != ff00::/8 masquerade fully-random');
    expect(text).toContain('ip6 saddr != fd00:10::/56 ip6 daddr fd00:10:0:1::/64 return');
    expect(text).toContain('ip6 daddr fd00:10::/56 accept');
    expect(await rules.check(spec)).toBe(true);
    expect(await rules.check(SPEC)).toBe(false);
  });

  it('ensure twice is idempotent', async () => {
    await rules.ensure(SPEC);
    const first = await listJson(ns);
    await rules.ensure(SPEC);
    expect(await listJson(ns)).toEqual(first);
    expect(await rules.check(SPEC)).toBe(true);
  });

  it('a network change replaces every rule in one transaction', async () => {
    await rules.ensure(SPEC);
    const mon = spawn('ip', ['netns', 'exec', ns, 'nft', 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    mon.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      // wait until the monitor is listening: a probe table shows up in its output
      for (let i = 0; !out.includes('twprobe'); i++) {
        if (i > 100) throw new Error('nft monitor never started');
        await inNs(ns, 'nft', 'add', 'table', 'ip', `twprobe${i}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const before = out.match(/# new generation/g)?.length ?? 0;
      const changed = { ...SPEC, network: '10.245.0.0/16', subnet: '10.245.7.0/24' };
      await rules.ensure(changed);
      for (let i = 0; (out.match(/# new generation/g)?.length ?? 0) === before && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      const gens = out.split(/# new generation[^\n]*\n/);
      expect(gens.length - 1).toBe(before + 1);
      const tx = (gens[before] ?? '').replace(/handle \d+ /g, '');   // the monitor prints position handles
      expect(tx).toContain('delete table inet twill');
      expect(tx).toContain('add rule inet twill postrouting ip saddr 10.245.0.0/16 ip daddr 10.245.0.0/16 return');
      expect(tx).toContain('ip daddr 10.245.7.0/24 return');
    } finally {
      mon.kill('SIGKILL');
    }
    const text = await inNs(ns, 'nft', 'list', 'table', 'inet', 'twill');
    expect(text).not.toContain('10.244.');
    expect(await rules.check(SPEC)).toBe(false);
  });

  it('masquerade=false removes the nat chain and keeps the forward rules', async () => {
    await rules.ensure(SPEC);
    const off = { ...SPEC, masquerade: false };
    await rules.ensure(off);
    const l = await listJson(ns);
    expect(l.chains.map((c) => c.name)).toEqual(['forward']);
    expect(l.rules.postrouting).toBeUndefined();
    expect(l.rules.forward).toHaveLength(2);
    expect(await rules.check(off)).toBe(true);
    expect(await rules.check(SPEC)).toBe(false);
  });

  it('remove deletes only the twill table; other tables survive; remove is idempotent', async () => {
    await inNsInput(ns, 'table ip foreign {\n chain input { type filter hook input priority 0; policy accept; tcp dport 22 accept; }\n}\n', 'nft', '-f', '-');
    const foreignBefore = await inNs(ns, 'nft', 'list', 'table', 'ip', 'foreign');
    await rules.ensure(SPEC);
    expect((await listJson(ns)).tables).toEqual(['ip foreign', 'inet twill']);
    expect(await inNs(ns, 'nft', 'list', 'table', 'ip', 'foreign')).toBe(foreignBefore);
    await rules.remove();
    expect((await listJson(ns)).tables).toEqual(['ip foreign']);
    expect(await inNs(ns, 'nft', 'list', 'table', 'ip', 'foreign')).toBe(foreignBefore);
    await rules.remove();
    expect(await rules.check(SPEC)).toBe(false);
  });

  it('check detects drift (a flushed chain, an extra rule, a deleted table) and ensure repairs it', async () => {
    await rules.ensure(SPEC);
    await inNs(ns, 'nft', 'flush', 'chain', 'inet', 'twill', 'postrouting');
    expect(await rules.check(SPEC)).toBe(false);
    await rules.ensure(SPEC);
    expect(await rules.check(SPEC)).toBe(true);
    await inNs(ns, 'nft', 'add', 'rule', 'inet', 'twill', 'forward', 'ip', 'saddr', '192.0.2.0/24', 'drop');
    expect(await rules.check(SPEC)).toBe(false);
    await rules.ensure(SPEC);
    await inNs(ns, 'nft', 'delete', 'table', 'inet', 'twill');
    expect(await rules.check(SPEC)).toBe(false);
    await rules.ensure(SPEC);
    expect(await rules.check(SPEC)).toBe(true);
  });

  it('removeAllTrafficRules cleans both backends (an agent may have used the other one)', async () => {
    await rules.ensure(SPEC);
    const ipt = await createTrafficRules({ logger: silentLogger(), netns: ns, prefer: 'iptables' });
    await ipt.ensure(SPEC);
    expect(await ipt.check(SPEC)).toBe(true);
    expect(await removeAllTrafficRules({ logger: silentLogger(), netns: ns })).toEqual(['nftables', 'iptables']);
    expect((await listJson(ns)).tables).not.toContain('inet twill');
    expect(await inNs(ns, 'iptables-save')).not.toContain('TWILL');
  });

  it('rejects an invalid spec before touching the kernel', async () => {
    await expect(rules.ensure({ network: '10.244.0.1/16', masquerade: true })).rejects.toThrow(/network: "10.244.0.1\/16" is invalid: host bits must be zero/);
    expect((await listJson(ns)).tables).toEqual([]);
  });
});
