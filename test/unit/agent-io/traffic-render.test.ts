// Pure parts of the traffic rules: spec validation, the nft table text, the iptables-restore
// input computed from a saved state. The kernel side is in test/integration/traffic.
import { describe, expect, it } from 'vitest';
import { inPlace, parseSave, renderRestore, wantedChains } from '../../../agent/traffic/iptables.js';
import { renderNftTable, renderNftTransaction } from '../../../agent/traffic/nft.js';
import { normalizeSpec } from '../../../agent/traffic/rules.js';
import { isTwillError } from '../../../lib/errors.js';

const V4 = { network: '10.244.0.0/16', subnet: '10.244.1.0/24', masquerade: true };

describe('normalizeSpec', () => {
  it('canonicalises IPv6 prefixes the way nft prints them', () => {
    const n = normalizeSpec({ ipv6Network: 'FD00:0010:0000:0000::/56', ipv6Subnet: 'fd00:10:0:1:0:0:0:0/64', masquerade: false });
    expect(n.nets).toEqual([{ family: 6, network: { family: 6, text: 'fd00:10::/56' }, subnet: { family: 6, text: 'fd00:10:0:1::/64' } }]);
  });

  it.each([
    [{ network: '10.244.0.1/16', masquerade: true }, 'network: "10.244.0.1/16" is invalid: host bits must be zero'],
    [{ network: '10.244.0.0/33', masquerade: true }, 'network: "10.244.0.0/33" is invalid: must be an IPv4 prefix'],
    [{ network: 'fd00::/56', masquerade: true }, 'network: "fd00::/56" is invalid: must be an IPv4 prefix'],
    [{ network: '10.244.0.0', masquerade: true }, 'network: "10.244.0.0" is invalid'],
    [{ ipv6Network: '10.0.0.0/8', masquerade: true }, 'ipv6Network: "10.0.0.0/8" is invalid: must be an IPv6 prefix'],
    [{ subnet: '10.244.1.0/24', masquerade: true }, 'subnet: "10.244.1.0/24" is invalid: needs network to be set'],
    [{ masquerade: true }, 'network: undefined is invalid: at least one of network, ipv6Network is required'],
  ])('rejects %j', (spec, msg) => {
    let err: unknown;
    try { normalizeSpec(spec); } catch (e) { err = e; }
    expect(isTwillError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain(msg);
  });
});

describe('nft ruleset', () => {
  it('renders flannel\'s masquerade policy and the forward accepts in one table', () => {
    expect(renderNftTable(normalizeSpec(V4))).toBe(`table inet twill {
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00004000 return
\t\tip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 return
\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tip saddr 10.244.0.0/16 accept
\t\tip daddr 10.244.0.0/16 accept
\t}
}
`);
  });

  it('omits the nat chain without masquerade, and adds ip6 rules for IPv6', () => {
    const text = renderNftTable(normalizeSpec({ ...V4, masquerade: false, ipv6Network: 'fd00:10::/56' }));
    expect(text).not.toContain('postrouting');
    expect(text).toContain('\t\tip6 saddr fd00:10::/56 accept\n\t\tip6 daddr fd00:10::/56 accept\n');
    const dual = renderNftTable(normalizeSpec({ ...V4, ipv6Network: 'fd00:10::/56' }));
    expect(dual).toContain('ip6 saddr fd00:10::/56 ip6 daddr != ff00::/8 masquerade fully-random');
    expect(dual.match(/meta mark/g)).toHaveLength(1);
  });

  it('replaces the table in one file: add (no-op if present), delete, define', () => {
    const tx = renderNftTransaction(normalizeSpec(V4));
    expect(tx.startsWith('table inet twill\ndelete table inet twill\ntable inet twill {\n')).toBe(true);
  });
});

const EMPTY_SAVE = `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -j DOCKER-USER
COMMIT
`;

describe('iptables restore plan', () => {
  const wanted = wantedChains(normalizeSpec(V4), 4);

  it('creates both chains and inserts one jump each on a host without them', () => {
    expect(renderRestore(parseSave(EMPTY_SAVE), wanted)).toBe(`*nat
:TWILL-POSTRTG - [0:0]
-A TWILL-POSTRTG -m mark --mark 0x4000/0x4000 -j RETURN
-A TWILL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN
-A TWILL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -j RETURN
-A TWILL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully
-A TWILL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully
-I POSTROUTING 1 -m comment --comment "twill masquerade" -j TWILL-POSTRTG
COMMIT
*filter
:TWILL-FWD - [0:0]
-A TWILL-FWD -s 10.244.0.0/16 -j ACCEPT
-A TWILL-FWD -d 10.244.0.0/16 -j ACCEPT
-I FORWARD 1 -m comment --comment "twill forward" -j TWILL-FWD
COMMIT
`);
    expect(inPlace(parseSave(EMPTY_SAVE), wanted)).toBe(false);
  });

  it('keeps one existing jump, drops duplicates, and recognises the result as in place', () => {
    const restored = renderRestore(parseSave(EMPTY_SAVE), wanted);
    const saved = EMPTY_SAVE
      .replace('COMMIT\n*filter', `${restored.split('\n').filter((l) => l.startsWith('-A TWILL-POSTRTG') || l.startsWith(':TWILL-POSTRTG')).join('\n')}\n-A POSTROUTING -m comment --comment "twill masquerade" -j TWILL-POSTRTG\n-A POSTROUTING -m comment --comment "twill masquerade" -j TWILL-POSTRTG\nCOMMIT\n*filter`)
      .replace('-A FORWARD -j DOCKER-USER', `-A FORWARD -m comment --comment "twill forward" -j TWILL-FWD\n-A FORWARD -j DOCKER-USER\n:TWILL-FWD - [0:0]\n-A TWILL-FWD -s 10.244.0.0/16 -j ACCEPT\n-A TWILL-FWD -d 10.244.0.0/16 -j ACCEPT`);
    const plan = renderRestore(parseSave(saved), wanted);
    expect(plan).not.toContain('-I POSTROUTING');
    expect(plan).not.toContain('-I FORWARD');
    expect(plan.match(/^-D POSTROUTING -m comment --comment "twill masquerade" -j TWILL-POSTRTG$/gm)).toHaveLength(1);
    expect(inPlace(parseSave(saved), wanted)).toBe(false);   // two jumps
    const fixed = saved.replace('-A POSTROUTING -m comment --comment "twill masquerade" -j TWILL-POSTRTG\n', '');
    expect(inPlace(parseSave(fixed), wanted)).toBe(true);
    expect(inPlace(parseSave(fixed.replace('-A TWILL-FWD -d 10.244.0.0/16 -j ACCEPT', '')), wanted)).toBe(false);
  });

  it('removes only its own jumps and chains', () => {
    const saved = `*nat
:POSTROUTING ACCEPT [0:0]
:TWILL-POSTRTG - [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -m comment --comment "twill masquerade" -j TWILL-POSTRTG
-A TWILL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN
COMMIT
`;
    expect(renderRestore(parseSave(saved), wantedChains(undefined, 4))).toBe(`*nat
-D POSTROUTING -m comment --comment "twill masquerade" -j TWILL-POSTRTG
-F TWILL-POSTRTG
-X TWILL-POSTRTG
COMMIT
`);
    expect(renderRestore(parseSave(EMPTY_SAVE), wantedChains(undefined, 4))).toBe('');
  });
});
