// iptables fallback for hosts without nft. twill owns two chains per family, TWILL-POSTRTG (nat)
// and TWILL-FWD (filter), each reached by one jump from POSTROUTING / FORWARD. A change is one
// `iptables-restore --noflush` per family holding only our chains: declaring a chain there
// creates or flushes it, so the rules are replaced in one commit per table and every other
// chain and rule on the host is left exactly as it was. The rule text is written in
// iptables-save's canonical form so check() can compare the saved chains line by line.
import type { Logger } from '../../lib/log.js';
import type { Family } from './cidr.js';
import type { Runner } from './exec.js';
import { forwardRules, kubeProxyMarkRule, masqueradeRules, normalizeSpec, type Match, type NormalSpec, type Rule } from './rules.js';
import { serializer } from './serial.js';
import type { TrafficOptions, TrafficRules } from './types.js';

export const IPT_NAT_CHAIN = 'TWILL-POSTRTG';
export const IPT_FWD_CHAIN = 'TWILL-FWD';

export type IptablesVariant = NonNullable<TrafficOptions['iptables']>;

interface ChainSpec { table: 'nat' | 'filter'; chain: string; hook: string; jump: string; rules: string[] | undefined }

/** Parsed iptables-save: table -> declared chains and their rules (text after `-A <chain> `). */
export type SavedTables = Map<string, { chains: Set<string>; rules: Map<string, string[]> }>;

export function iptablesBinary(family: Family, variant: IptablesVariant, tool: '' | '-save' | '-restore'): string {
  return `${family === 6 ? 'ip6tables' : 'iptables'}${variant === 'default' ? '' : `-${variant}`}${tool}`;
}

function match(flag: '-s' | '-d', mt: Match | undefined): string[] {
  return mt === undefined ? [] : [`${mt.negate ? '! ' : ''}${flag} ${mt.cidr}`];
}

export function iptablesRule(r: Rule): string {
  const mark = r.mark === undefined ? [] : [`-m mark --mark 0x${r.mark.toString(16)}/0x${r.mark.toString(16)}`];
  const target = { return: '-j RETURN', accept: '-j ACCEPT', masquerade: '-j MASQUERADE --random-fully' }[r.action];
  return [...match('-s', r.src), ...match('-d', r.dst), ...mark, target].join(' ');
}

/** What twill wants in one family; `rules: undefined` means the chain must not exist. */
export function wantedChains(spec: NormalSpec | undefined, family: Family): ChainSpec[] {
  const net = spec?.nets.find((n) => n.family === family);
  const masq = net !== undefined && spec?.masquerade === true
    ? [kubeProxyMarkRule(family), ...masqueradeRules(net)].map(iptablesRule) : undefined;
  const fwd = net === undefined ? undefined : forwardRules(net).map(iptablesRule);
  return [
    { table: 'nat', chain: IPT_NAT_CHAIN, hook: 'POSTROUTING', jump: `-m comment --comment "twill masquerade" -j ${IPT_NAT_CHAIN}`, rules: masq },
    { table: 'filter', chain: IPT_FWD_CHAIN, hook: 'FORWARD', jump: `-m comment --comment "twill forward" -j ${IPT_FWD_CHAIN}`, rules: fwd },
  ];
}

export function parseSave(text: string): SavedTables {
  const tables: SavedTables = new Map();
  let cur: { chains: Set<string>; rules: Map<string, string[]> } | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      cur = { chains: new Set(), rules: new Map() };
      tables.set(line.slice(1).trim(), cur);
    } else if (cur && line.startsWith(':')) {
      cur.chains.add(line.slice(1).split(' ')[0] ?? '');
    } else if (cur && line.startsWith('-A ')) {
      const rest = line.slice(3);
      const sp = rest.indexOf(' ');
      const chain = sp < 0 ? rest : rest.slice(0, sp);
      const list = cur.rules.get(chain) ?? [];
      list.push(sp < 0 ? '' : rest.slice(sp + 1));
      cur.rules.set(chain, list);
    }
  }
  return tables;
}

function jumpsTo(saved: SavedTables, c: ChainSpec): string[] {
  return (saved.get(c.table)?.rules.get(c.hook) ?? []).filter((r) => r.endsWith(`-j ${c.chain}`));
}

function chainLines(saved: SavedTables, c: ChainSpec): string[] {
  const jumps = jumpsTo(saved, c);
  const exists = saved.get(c.table)?.chains.has(c.chain) === true;
  if (c.rules === undefined) {
    return [...jumps.map((j) => `-D ${c.hook} ${j}`), ...(exists ? [`-F ${c.chain}`, `-X ${c.chain}`] : [])];
  }
  const jumpFix = jumps.length === 0 ? [`-I ${c.hook} 1 ${c.jump}`] : jumps.slice(1).map((j) => `-D ${c.hook} ${j}`);
  return [`:${c.chain} - [0:0]`, ...c.rules.map((r) => `-A ${c.chain} ${r}`), ...jumpFix];
}

/** The iptables-restore --noflush input that turns `saved` into `wanted` ('' = nothing to do). */
export function renderRestore(saved: SavedTables, wanted: ChainSpec[]): string {
  const out: string[] = [];
  for (const table of ['nat', 'filter'] as const) {
    const lines = wanted.filter((c) => c.table === table).flatMap((c) => chainLines(saved, c));
    if (lines.length > 0) out.push(`*${table}`, ...lines, 'COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

export function inPlace(saved: SavedTables, wanted: ChainSpec[]): boolean {
  return wanted.every((c) => {
    const exists = saved.get(c.table)?.chains.has(c.chain) === true;
    const jumps = jumpsTo(saved, c).length;
    if (c.rules === undefined) return !exists && jumps === 0;
    const rules = saved.get(c.table)?.rules.get(c.chain) ?? [];
    return exists && jumps === 1 && rules.length === c.rules.length && rules.every((r, i) => r === c.rules?.[i]);
  });
}

export function createIptablesRules(run: Runner, logger: Logger, variant: IptablesVariant = 'default'): TrafficRules {
  const serial = serializer();

  async function save(family: Family, required: boolean): Promise<SavedTables | undefined> {
    try {
      return parseSave((await run(iptablesBinary(family, variant, '-save'), [])).stdout);
    } catch (err) {
      if (required) throw err;
      logger.debug({ family, err }, 'ip(6)tables-save failed; nothing of ours to remove in this family');
      return undefined;
    }
  }

  async function converge(spec: NormalSpec | undefined): Promise<void> {
    for (const family of [4, 6] as const) {
      const wanted = wantedChains(spec, family);
      const needed = wanted.some((c) => c.rules !== undefined);
      const saved = await save(family, needed);
      if (saved === undefined) continue;
      const input = renderRestore(saved, wanted);
      if (input !== '') await run(iptablesBinary(family, variant, '-restore'), ['--noflush'], input);
    }
  }

  return {
    backend: 'iptables',
    ensure: (spec) => serial(async () => {
      await converge(normalizeSpec(spec));
      logger.info({ backend: 'iptables', variant, spec }, 'traffic rules installed');
    }),
    check: (spec) => serial(async () => {
      const n = normalizeSpec(spec);
      for (const family of [4, 6] as const) {
        const wanted = wantedChains(n, family);
        const saved = await save(family, wanted.some((c) => c.rules !== undefined));
        if (saved !== undefined && !inPlace(saved, wanted)) return false;
      }
      return true;
    }),
    remove: () => serial(async () => {
      await converge(undefined);
      logger.info({ backend: 'iptables', variant }, 'traffic rules removed');
    }),
  };
}
