// iptables fallback against the real kernel, for each iptables flavour installed (nft-based and
// legacy), each test in a fresh netns; and the backend selection itself falling back to iptables
// on a host without `nft`.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTrafficRules, type TrafficRules, type TrafficSpec } from '../../../agent/traffic/index.js';
import { createLogger, silentLogger } from '../../../lib/log.js';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { addNetns, delNetns, hasBinary, inNs, inNsInput, sh } from './netns.js';

const SPEC: TrafficSpec = { network: '10.244.0.0/16', subnet: '10.244.1.0/24', masquerade: true };

const NAT_RULES = [
  '-A TWILL-POSTRTG -m mark --mark 0x4000/0x4000 -j RETURN',
  '-A TWILL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN',
  '-A TWILL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -j RETURN',
  '-A TWILL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully',
  '-A TWILL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully',
];
const FWD_RULES = ['-A TWILL-FWD -s 10.244.0.0/16 -j ACCEPT', '-A TWILL-FWD -d 10.244.0.0/16 -j ACCEPT'];
const NAT_JUMP = '-A POSTROUTING -m comment --comment "twill masquerade" -j TWILL-POSTRTG';
const FWD_JUMP = '-A FORWARD -m comment --comment "twill forward" -j TWILL-FWD';

const variants = (['nft', 'legacy'] as const);
const present = await Promise.all(variants.map((v) => hasBinary(`iptables-${v}-restore`)));

describeRoot('traffic rules: iptables fallback', () => {
  for (const [i, variant] of variants.entries()) {
    const d = present[i] ? describe : describe.skip;
    d(`iptables-${variant}`, () => {
      let ns = '';
      let rules: TrafficRules;
      const save = async (fam: 4 | 6 = 4) => (await inNs(ns, `${fam === 6 ? 'ip6tables' : 'iptables'}-${variant}-save`))
        .split('\n').filter((l) => !l.startsWith('#') && l !== '');
      const ours = async (fam: 4 | 6 = 4) => (await save(fam)).filter((l) => l.includes('TWILL'));
      const ipt = (...args: string[]) => inNs(ns, `iptables-${variant}`, ...args);

      beforeEach(async () => {
        ns = `${uniquePrefix('twt')}ipt`;
        await addNetns(ns);
        rules = await createTrafficRules({ logger: silentLogger(), netns: ns, prefer: 'iptables', iptables: variant });
      });
      afterEach(async () => { await delNetns(ns); });

      it('ensure creates exactly our two chains and one jump to each', async () => {
        expect(rules.backend).toBe('iptables');
        await rules.ensure(SPEC);
        expect(await ours()).toEqual([':TWILL-FWD - [0:0]', FWD_JUMP, ...FWD_RULES, ':TWILL-POSTRTG - [0:0]', NAT_JUMP, ...NAT_RULES]);
        expect(await ours(6)).toEqual([]);
        expect(await rules.check(SPEC)).toBe(true);
      });

      it('ensure twice is idempotent', async () => {
        await rules.ensure(SPEC);
        const first = await save();
        await rules.ensure(SPEC);
        expect(await save()).toEqual(first);
        expect(await rules.check(SPEC)).toBe(true);
      });

      it('a network change replaces the rules; masquerade=false removes the nat chain and its jump', async () => {
        await rules.ensure(SPEC);
        const changed = { network: '10.245.0.0/16', subnet: '10.245.7.0/24', masquerade: true };
        await rules.ensure(changed);
        const after = await ours();
        expect(after.join('\n')).not.toContain('10.244.');
        expect(after).toContain('-A TWILL-POSTRTG ! -s 10.245.0.0/16 -d 10.245.7.0/24 -j RETURN');
        expect(await rules.check(changed)).toBe(true);
        expect(await rules.check(SPEC)).toBe(false);
        const off = { ...changed, masquerade: false };
        await rules.ensure(off);
        expect((await ours()).filter((l) => l.includes('POSTR'))).toEqual([]);
        expect(await ours()).toContain('-A TWILL-FWD -s 10.245.0.0/16 -j ACCEPT');
        expect(await rules.check(off)).toBe(true);
      });

      it('leaves other software\'s rules and chains untouched, before and after remove', async () => {
        await inNsInput(ns, '*nat\n:KUBE-POSTROUTING - [0:0]\n-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE\n-A POSTROUTING -j KUBE-POSTROUTING\n-A KUBE-POSTROUTING -j RETURN\nCOMMIT\n*filter\n-A FORWARD -d 192.0.2.0/24 -j DROP\nCOMMIT\n',
          `iptables-${variant}-restore`, '--noflush');
        const foreign = await save();
        await rules.ensure(SPEC);
        const withOurs = await save();
        expect(withOurs.filter((l) => !l.includes('TWILL'))).toEqual(foreign);
        // our jumps come first in their hook chains
        expect(withOurs.filter((l) => l.startsWith('-A POSTROUTING'))[0]).toBe(NAT_JUMP);
        await rules.remove();
        expect(await save()).toEqual(foreign);
        await rules.remove();
        expect(await save()).toEqual(foreign);
      });

      it('check detects drift (flushed chain, lost jump, duplicated jump) and ensure repairs it', async () => {
        await rules.ensure(SPEC);
        await ipt('-t', 'nat', '-F', 'TWILL-POSTRTG');
        expect(await rules.check(SPEC)).toBe(false);
        await rules.ensure(SPEC);
        expect(await rules.check(SPEC)).toBe(true);
        await ipt('-t', 'filter', '-D', 'FORWARD', '-m', 'comment', '--comment', 'twill forward', '-j', 'TWILL-FWD');
        expect(await rules.check(SPEC)).toBe(false);
        await rules.ensure(SPEC);
        await ipt('-t', 'nat', '-A', 'POSTROUTING', '-j', 'TWILL-POSTRTG');
        expect(await rules.check(SPEC)).toBe(false);
        await rules.ensure(SPEC);
        expect(await rules.check(SPEC)).toBe(true);
        expect((await ours()).filter((l) => l.startsWith('-A POSTROUTING'))).toEqual([NAT_JUMP]);
      });

      it('installs the ip6tables chains for an IPv6 network and removes them again', async () => {
        const spec = { ...SPEC, ipv6Network: 'fd00:10::/56', ipv6Subnet: 'fd00:10:0:1::/64' };
        await rules.ensure(spec);
        const v6 = await ours(6);
        expect(v6).toContain('-A TWILL-POSTRTG -s fd00:10::/56 ! -d ff00::/8 -j MASQUERADE --random-fully');
        expect(v6).toContain('-A TWILL-FWD -d fd00:10::/56 -j ACCEPT');
        expect(await rules.check(spec)).toBe(true);
        await rules.ensure(SPEC);
        expect(await ours(6)).toEqual([]);
        expect(await rules.check(SPEC)).toBe(true);
        await rules.remove();
        expect([...await ours(), ...await ours(6)]).toEqual([]);
      });
    });
  }
});

describeRoot('traffic rules: backend selection on a host without nft', () => {
  // Everything the selection and the iptables backend run, but not nft: `ip` (the runner enters
  // the test's netns with `ip netns exec`) and the default iptables tools of both families.
  const TOOLS = ['ip', 'iptables', 'iptables-save', 'iptables-restore', 'ip6tables', 'ip6tables-save', 'ip6tables-restore'];
  let ns = '';
  let bin = '';
  let savedPath: string | undefined;
  let nft = '';      // the real nft, by absolute path, for the assertions

  beforeEach(async () => {
    nft = (await sh('sh', ['-c', 'command -v nft'])).trim();
    bin = mkdtempSync(join(tmpdir(), 'tw6hb-path-'));
    for (const t of TOOLS) symlinkSync((await sh('sh', ['-c', `command -v ${t}`])).trim(), join(bin, t));
    ns = `${uniquePrefix('tw6hb-')}nonft`;
    await addNetns(ns);
    savedPath = process.env.PATH;
    process.env.PATH = bin;
  });
  afterEach(async () => {
    process.env.PATH = savedPath;
    await delNetns(ns);
    rmSync(bin, { recursive: true, force: true });
  });

  it('picks iptables when nft is not on PATH, and the rules land in iptables, not in nftables', async () => {
    // Precondition: in this environment nft really cannot be run, while iptables can.
    await expect(sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'])).rejects.toThrow();
    await sh('ip', ['netns', 'exec', ns, 'iptables-save']);
    const lines: string[] = [];
    const logger = createLogger('warn', 'twill', { write: (l: string) => { lines.push(l); } });
    const rules = await createTrafficRules({ logger, netns: ns });
    expect(rules.backend).toBe('iptables');
    expect(lines.join(''), 'the fallback is logged').toContain('falling back to iptables');
    await rules.ensure(SPEC);
    expect(await rules.check(SPEC)).toBe(true);
    process.env.PATH = savedPath;
    const saved = (await inNs(ns, 'iptables-save')).split('\n').filter((l) => l.includes('TWILL'));
    expect(saved).toEqual([':TWILL-FWD - [0:0]', FWD_JUMP, ...FWD_RULES, ':TWILL-POSTRTG - [0:0]', NAT_JUMP, ...NAT_RULES]);
    const tables = await inNs(ns, nft, 'list', 'tables');
    expect(tables, 'no nftables table of twill').not.toMatch(/table inet twill/);
  });
});
