// nftables backend. twill owns exactly one table, `inet twill`, and touches nothing else: a
// whole replacement is one `nft -f -` file (add table; delete table; define table), which the
// kernel applies as a single transaction, so there is never a moment with half the rules, and
// chains that are no longer wanted (masquerade turned off) disappear with the old table.
// check() compares `nft list table` with the text we would install: the rule text below is
// written in nft's own canonical listing form. As a fallback for nft versions that print it
// differently, the listing taken right after ensure() also counts as "in place".
//
// Caveat (nftables semantics): `accept` in our forward chain does not override a `drop` in
// another base chain on the same hook (e.g. an iptables-nft FORWARD policy DROP). Where Docker
// has set such a policy, prefer the iptables backend.
import type { Logger } from '../../lib/log.js';
import { CommandError, type Runner } from './exec.js';
import { forwardRules, kubeProxyMarkRule, masqueradeRules, normalizeSpec, type Match, type NormalSpec, type Rule } from './rules.js';
import { serializer } from './serial.js';
import type { TrafficRules, TrafficSpec } from './types.js';

export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'twill';
export const NFT_NAT_CHAIN = 'postrouting';
export const NFT_FORWARD_CHAIN = 'forward';

function match(proto: 'ip' | 'ip6', field: 'saddr' | 'daddr', mt: Match | undefined): string[] {
  return mt === undefined ? [] : [`${proto} ${field}${mt.negate ? ' !=' : ''} ${mt.cidr}`];
}

function hex8(n: number): string { return `0x${n.toString(16).padStart(8, '0')}`; }

export function nftRule(r: Rule): string {
  const proto = r.family === 6 ? 'ip6' : 'ip';
  const parts = [
    ...(r.mark === undefined ? [] : [`meta mark & ${hex8(r.mark)} == ${hex8(r.mark)}`]),
    ...match(proto, 'saddr', r.src),
    ...match(proto, 'daddr', r.dst),
    r.action === 'masquerade' ? 'masquerade fully-random' : r.action,
  ];
  return parts.join(' ');
}

function chain(name: string, header: string, rules: Rule[]): string {
  return [`\tchain ${name} {`, `\t\t${header}`, ...rules.map((r) => `\t\t${nftRule(r)}`), '\t}'].join('\n');
}

/** The table exactly as `nft list table inet twill` prints it. */
export function renderNftTable(spec: NormalSpec): string {
  const chains: string[] = [];
  if (spec.masquerade) {
    const rules = [kubeProxyMarkRule('any'), ...spec.nets.flatMap(masqueradeRules)];
    chains.push(chain(NFT_NAT_CHAIN, 'type nat hook postrouting priority srcnat; policy accept;', rules));
  }
  chains.push(chain(NFT_FORWARD_CHAIN, 'type filter hook forward priority filter; policy accept;', spec.nets.flatMap(forwardRules)));
  return `table ${NFT_FAMILY} ${NFT_TABLE} {\n${chains.join('\n\n')}\n}\n`;
}

/** The `nft -f` input: one transaction that replaces the table whether or not it exists. */
export function renderNftTransaction(spec: NormalSpec): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${renderNftTable(spec)}`;
}

export function normalizeListing(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').join('\n');
}

export function createNftRules(run: Runner, logger: Logger): TrafficRules {
  const serial = serializer();
  let applied: { key: string; listing: string } | undefined;

  async function list(): Promise<string | undefined> {
    try {
      return normalizeListing((await run('nft', ['list', 'table', NFT_FAMILY, NFT_TABLE])).stdout);
    } catch (err) {
      if (err instanceof CommandError && /No such file or directory|does not exist/i.test(err.stderr)) return undefined;
      throw err;
    }
  }

  return {
    backend: 'nftables',
    ensure: (spec) => serial(async () => {
      const n = normalizeSpec(spec);
      await run('nft', ['-f', '-'], renderNftTransaction(n));
      applied = { key: JSON.stringify(n), listing: (await list()) ?? '' };
      logger.info({ backend: 'nftables', table: `${NFT_FAMILY} ${NFT_TABLE}`, spec }, 'traffic rules installed');
    }),
    check: (spec: TrafficSpec) => serial(async () => {
      const n = normalizeSpec(spec);
      const current = await list();
      if (current === undefined) return false;
      if (current === normalizeListing(renderNftTable(n))) return true;
      return applied !== undefined && applied.key === JSON.stringify(n) && applied.listing === current;
    }),
    remove: () => serial(async () => {
      await run('nft', ['-f', '-'], `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n`);
      applied = undefined;
      logger.info({ backend: 'nftables' }, 'traffic rules removed');
    }),
  };
}
