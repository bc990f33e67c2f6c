// NetworkPolicy enforcement in nftables: a PolicyModel rendered into one twill-owned table, and
// the diff between two renderings, each applied as one `nft -f -` transaction.
//
// Why a table of its own (`inet twill-policy`) and not chains inside `inet twill`: the traffic
// table is replaced whole on every ensure() (agent/traffic/nft.ts: add; delete; define), which
// would wipe the policy chains, sets and their drop counters; and a policy change must not
// rewrite masquerade rules. Two tables on the same hook are independent base chains: a packet
// must be accepted by both, so policy drops work whatever the traffic table says.
//
// Layout (every packet that crosses the node's forward path: pod↔pod across nodes, and pod↔pod
// on the local bridge when br_netfilter's bridge-nf-call-iptables=1 sends bridged IP through the
// inet forward hook; the node's own traffic to and from its pods takes input/output and is
// never filtered, as upstream requires):
//
//   chain egress   forward, priority filter      ct established,related → accept
//                                                 saddr . daddr in @self4/6 → accept (hairpin)
//                                                 ip saddr vmap @eg4 / ip6 saddr vmap @eg6
//   chain ingress  forward, priority filter + 1  ct established,related → accept
//                                                 fib saddr type local → accept (the node itself)
//                                                 saddr . daddr in @self4/6 → accept (hairpin)
//                                                 ip daddr vmap @in4 / ip6 daddr vmap @in6
//
// The verdict maps send an isolated local pod's address to the chain of its *combination* of
// policies (`in-pods/<hash>`: one `jump` per policy, then `counter drop`), so the rule count
// grows with policies and distinct combinations, never with pods; pods that no policy isolates
// are not in the maps and pass. A policy chain (`in/<ns>/<name>`) has a few rules per policy
// rule, each testing named sets: `…/<i>/peer4|peer6` (interval sets: pod addresses and ipBlocks
// with their excepts cut out), `…/<i>/ports` (protocol . port-range) and `…/<i>/named4|named6`
// (address . protocol . port, named ports resolved per pod). A pod or label change therefore
// changes set and map elements only; a policy change flushes and refills that policy's chain.
// Chain and set names depend only on policies, so two renderings diff by name.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { TwillError } from '../errors.js';
import { tryParsePrefix } from '../ip/prefix.js';
import { prefixInterval, toAddrSet } from './addrset.js';
import type { AddrRange, CompiledPolicy, CompiledRule, Direction, PolicyModel } from './types.js';

export const POLICY_FAMILY = 'inet';
export const POLICY_TABLE = 'twill-policy';

export interface NftSet { name: string; type: string; interval: boolean; elements: string[] }
export interface NftChain { name: string; header?: string; rules: string[] }

/** Which namespace and policies a combination chain (and its drop counter) stands for. */
export interface ComboInfo { chain: string; direction: Direction; namespace: string; policies: string[] }

/** A rendered table: what is compared, diffed and printed. */
export interface NftPolicyState {
  table: string;
  sets: Map<string, NftSet>;
  chains: Map<string, NftChain>;
  combos: ComboInfo[];
}

const DIR_PREFIX: Record<Direction, string> = { ingress: 'in', egress: 'eg' };
const MAX_NAME = 200;

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

/** `in/<ns>/<name>`; names too long for nft (256) keep the namespace and hash the name. */
export function policyChainName(dir: Direction, p: Pick<CompiledPolicy, 'namespace' | 'name'>): string {
  const full = `${DIR_PREFIX[dir]}/${p.namespace}/${p.name}`;
  return full.length <= MAX_NAME ? full : `${DIR_PREFIX[dir]}/${p.namespace}/h-${shortHash(p.name)}`;
}

export function comboChainName(dir: Direction, policyKeys: readonly string[]): string {
  return `${DIR_PREFIX[dir]}-pods/${shortHash(policyKeys.join('\n'))}`;
}

function rangeElement(r: AddrRange): string {
  return r.from === r.to ? r.from : `${r.from}-${r.to}`;
}

function protoName(p: string): string { return p.toLowerCase(); }

function addSet(sets: Map<string, NftSet>, name: string, type: string, interval: boolean, elements: string[]): void {
  sets.set(name, { name, type, interval, elements: [...new Set(elements)].sort() });
}

function ruleLines(dir: Direction, chain: string, i: number, rule: CompiledRule, sets: Map<string, NftSet>): string[] {
  const base = `${chain}/${i}`;
  const peerField = dir === 'ingress' ? 'saddr' : 'daddr';
  const peerMatch: Record<'ip' | 'ip6', string> = { ip: '', ip6: '' };
  // An egress rule whose ports are all named needs no peer set: its named sets hold peers only.
  const usesPeers = rule.ports === 'any' || rule.ports.ranges.length > 0 || dir === 'ingress';
  if (rule.peers !== 'any' && usesPeers) {
    addSet(sets, `${base}/peer4`, 'ipv4_addr', true, rule.peers.v4.map(rangeElement));
    addSet(sets, `${base}/peer6`, 'ipv6_addr', true, rule.peers.v6.map(rangeElement));
    peerMatch.ip = `ip ${peerField} @${base}/peer4 `;
    peerMatch.ip6 = `ip6 ${peerField} @${base}/peer6 `;
  }
  const fams = rule.peers === 'any' ? [''] : [peerMatch.ip, peerMatch.ip6];
  if (rule.ports === 'any') return fams.map((m) => `${m}accept`);
  const out: string[] = [];
  if (rule.ports.ranges.length > 0) {
    addSet(sets, `${base}/ports`, 'inet_proto . inet_service', true, rule.ports.ranges.map((r) => `${protoName(r.protocol)} . ${r.from === r.to ? r.from : `${r.from}-${r.to}`}`));
    for (const m of fams) out.push(`${m}meta l4proto . th dport @${base}/ports accept`);
  }
  if (rule.ports.named) {
    const resolved = rule.ports.resolved;
    addSet(sets, `${base}/named4`, 'ipv4_addr . inet_proto . inet_service', false, resolved.filter((r) => !r.ip.includes(':')).map((r) => `${r.ip} . ${protoName(r.protocol)} . ${r.port}`));
    addSet(sets, `${base}/named6`, 'ipv6_addr . inet_proto . inet_service', false, resolved.filter((r) => r.ip.includes(':')).map((r) => `${r.ip} . ${protoName(r.protocol)} . ${r.port}`));
    // Ingress: the destination (a selected pod) carries the name, the source must be a peer.
    // Egress: the destination is the peer pod carrying the name; the set holds only peer pods.
    if (dir === 'ingress') {
      out.push(`${peerMatch.ip}ip daddr . meta l4proto . th dport @${base}/named4 accept`);
      out.push(`${peerMatch.ip6}ip6 daddr . meta l4proto . th dport @${base}/named6 accept`);
    } else {
      out.push(`ip daddr . meta l4proto . th dport @${base}/named4 accept`);
      out.push(`ip6 daddr . meta l4proto . th dport @${base}/named6 accept`);
    }
  }
  return out;
}

export interface RenderOptions {
  /** The table name (tests use their own); default `twill-policy`. */
  table?: string;
  /**
   * The new-pod window guard: the local node's pod CIDRs. When set, forwarded traffic to or from
   * an address inside them that the model does not know as a local pod is dropped (and counted),
   * so a pod whose Pod object the agent has not seen yet is closed, not open, until its policies
   * are in place. Known pods that no policy isolates pass as before.
   */
  guardCidrs?: readonly string[];
}

/** The desired table for a model. Pure; deterministic for equal models. */
export function renderPolicyState(model: PolicyModel, opts: RenderOptions = {}): NftPolicyState {
  const table = opts.table ?? POLICY_TABLE;
  const sets = new Map<string, NftSet>();
  const chains = new Map<string, NftChain>();
  const combos: ComboInfo[] = [];
  const byKey = new Map(model.policies.map((p) => [p.key, p]));

  for (const p of model.policies) {
    for (const dir of ['ingress', 'egress'] as const) {
      const rules = p[dir];
      if (rules === undefined) continue;
      const name = policyChainName(dir, p);
      chains.set(name, { name, rules: rules.flatMap((r, i) => ruleLines(dir, name, i, r, sets)) });
    }
  }

  const vmaps: Record<string, string[]> = { in4: [], in6: [], eg4: [], eg6: [] };
  // "a pod cannot block access to itself": its own address pairs, for hairpin through a Service
  const self: Record<4 | 6, string[]> = { 4: [], 6: [] };
  const seenCombo = new Set<string>();
  const dispatched = new Set<string>();
  for (const pod of model.localPods) {
    if (pod.ingress.length > 0 || pod.egress.length > 0) for (const ip of pod.ips) self[ip.includes(':') ? 6 : 4].push(`${ip} . ${ip}`);
    for (const dir of ['ingress', 'egress'] as const) {
      const keys = pod[dir].filter((k) => byKey.has(k));
      if (keys.length === 0) continue;
      const combo = comboChainName(dir, keys);
      if (!seenCombo.has(combo)) {
        seenCombo.add(combo);
        const jumps = keys.map((k) => `jump ${policyChainName(dir, byKey.get(k) as CompiledPolicy)}`);
        chains.set(combo, { name: combo, rules: [...jumps, 'counter drop'] });
        combos.push({ chain: combo, direction: dir, namespace: pod.namespace, policies: keys });
      }
      for (const ip of pod.ips) {
        // one verdict per address (the compiler already gives each address one owner)
        const map = `${DIR_PREFIX[dir]}${ip.includes(':') ? 6 : 4}`;
        const key = `${map} ${ip}`;
        if (dispatched.has(key)) continue;
        dispatched.add(key);
        vmaps[map]?.push(`${ip} : goto ${combo}`);
      }
    }
  }
  addSet(sets, 'in4', 'ipv4_addr : verdict', false, vmaps.in4 ?? []);
  addSet(sets, 'in6', 'ipv6_addr : verdict', false, vmaps.in6 ?? []);
  addSet(sets, 'eg4', 'ipv4_addr : verdict', false, vmaps.eg4 ?? []);
  addSet(sets, 'eg6', 'ipv6_addr : verdict', false, vmaps.eg6 ?? []);
  addSet(sets, 'self4', 'ipv4_addr . ipv4_addr', false, self[4]);
  addSet(sets, 'self6', 'ipv6_addr . ipv6_addr', false, self[6]);

  const guard: Record<'ingress' | 'egress', string[]> = { ingress: [], egress: [] };
  if (opts.guardCidrs !== undefined) {
    const cidrs = opts.guardCidrs.map((c) => {
      const p = tryParsePrefix(c, { normalize: true });
      if (!p) throw new TwillError('CONFIG_INVALID', `network policy: guard CIDR "${c}" is not a CIDR`, { field: 'guardCidrs', value: c });
      return prefixInterval(p);
    });
    const fmt = (f: 4 | 6) => toAddrSet(cidrs.filter((i) => i.family === f))[f === 4 ? 'v4' : 'v6'].map(rangeElement);
    addSet(sets, 'local4', 'ipv4_addr', true, fmt(4));
    addSet(sets, 'local6', 'ipv6_addr', true, fmt(6));
    const known = model.localPods.flatMap((p) => p.ips);
    addSet(sets, 'known4', 'ipv4_addr', false, known.filter((ip) => !ip.includes(':')));
    addSet(sets, 'known6', 'ipv6_addr', false, known.filter((ip) => ip.includes(':')));
    guard.ingress = ['ip daddr @local4 ip daddr != @known4 counter drop', 'ip6 daddr @local6 ip6 daddr != @known6 counter drop'];
    guard.egress = ['ip saddr @local4 ip saddr != @known4 counter drop', 'ip6 saddr @local6 ip6 saddr != @known6 counter drop'];
  }

  const established = 'ct state established,related accept';
  const selfRules = ['ip saddr . ip daddr @self4 accept', 'ip6 saddr . ip6 daddr @self6 accept'];
  chains.set('egress', {
    name: 'egress',
    header: 'type filter hook forward priority filter; policy accept;',
    rules: [established, ...selfRules, 'ip saddr vmap @eg4', 'ip6 saddr vmap @eg6', ...guard.egress],
  });
  chains.set('ingress', {
    name: 'ingress',
    header: 'type filter hook forward priority filter + 1; policy accept;',
    rules: [established, 'fib saddr type local accept', ...selfRules, 'ip daddr vmap @in4', 'ip6 daddr vmap @in6', ...guard.ingress],
  });
  return { table, sets, chains, combos };
}

function isMap(s: NftSet): boolean { return s.type.includes(' : '); }

function setDecl(s: NftSet): string {
  return `type ${s.type};${s.interval ? ' flags interval;' : ''}`;
}

/** Splits long element lists so no single nft line grows without bound. */
function chunks<T>(list: readonly T[], n = 512): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

/** The full transaction: create or replace the whole table, atomically. */
export function renderFull(state: NftPolicyState): string {
  const t = `${POLICY_FAMILY} ${state.table}`;
  const lines = [`table ${t}`, `delete table ${t}`, `table ${t} {`];
  for (const s of state.sets.values()) {
    lines.push(`\t${isMap(s) ? 'map' : 'set'} ${s.name} {`, `\t\t${setDecl(s)}`);
    if (s.elements.length > 0) lines.push(`\t\telements = { ${s.elements.join(',\n\t\t\t')} }`);
    lines.push('\t}');
  }
  // regular chains before the base chains that reach them
  const ordered = [...state.chains.values()].sort((a, b) => Number(a.header !== undefined) - Number(b.header !== undefined));
  for (const c of ordered) {
    lines.push(`\tchain ${c.name} {`);
    if (c.header) lines.push(`\t\t${c.header}`);
    for (const r of c.rules) lines.push(`\t\t${r}`);
    lines.push('\t}');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function sameRules(a: NftChain, b: NftChain): boolean {
  return a.header === b.header && a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i]);
}

export interface PolicyDiff {
  text: string;
  elementsAdded: number;
  elementsDeleted: number;
  /** Chains added, removed or refilled (0 for a pure element update). */
  chainsChanged: number;
  setsChanged: number;
}

/**
 * The transaction taking `from` (what is installed) to `to`. Order inside the one transaction:
 * new sets and chains; element deletes (freeing the chains a verdict map pointed to); flush and
 * refill changed chains, flush removed ones (dropping their references to sets and chains);
 * element adds; then delete the removed chains and sets. Empty text: nothing to do.
 */
export function renderDiff(from: NftPolicyState, to: NftPolicyState): PolicyDiff {
  if (from.table !== to.table) throw new TwillError('INTERNAL', `policy diff between tables ${from.table} and ${to.table}`);
  const t = `${POLICY_FAMILY} ${to.table}`;
  const head: string[] = [], dels: string[] = [], refill: string[] = [], adds: string[] = [], tail: string[] = [];
  let elementsAdded = 0, elementsDeleted = 0, chainsChanged = 0, setsChanged = 0;

  for (const s of to.sets.values()) {
    const old = from.sets.get(s.name);
    if (old && (old.type !== s.type || old.interval !== s.interval)) throw new TwillError('INTERNAL', `set ${s.name} changed type`);
    if (!old) { head.push(`add ${isMap(s) ? 'map' : 'set'} ${t} ${s.name} { ${setDecl(s)} }`); setsChanged++; }
    const had = new Set(old?.elements ?? []);
    const want = new Set(s.elements);
    const gone = [...had].filter((e) => !want.has(e));
    const fresh = s.elements.filter((e) => !had.has(e));
    for (const c of chunks(gone)) dels.push(`delete element ${t} ${s.name} { ${c.join(', ')} }`);
    for (const c of chunks(fresh)) adds.push(`add element ${t} ${s.name} { ${c.join(', ')} }`);
    elementsAdded += fresh.length;
    elementsDeleted += gone.length;
  }
  for (const c of to.chains.values()) {
    const old = from.chains.get(c.name);
    if (old && sameRules(old, c)) continue;
    chainsChanged++;
    if (!old) head.push(c.header ? `add chain ${t} ${c.name} { ${c.header} }` : `add chain ${t} ${c.name}`);
    else if (old.header !== c.header) throw new TwillError('INTERNAL', `base chain ${c.name} changed its hook`);
    else refill.push(`flush chain ${t} ${c.name}`);
    for (const r of c.rules) refill.push(`add rule ${t} ${c.name} ${r}`);
  }
  for (const c of from.chains.values()) {
    if (to.chains.has(c.name)) continue;
    chainsChanged++;
    refill.unshift(`flush chain ${t} ${c.name}`);
    tail.push(`delete chain ${t} ${c.name}`);
  }
  for (const s of from.sets.values()) {
    if (to.sets.has(s.name)) continue;
    setsChanged++;
    tail.push(`delete ${isMap(s) ? 'map' : 'set'} ${t} ${s.name}`);
  }
  const all = [...head, ...dels, ...refill, ...adds, ...tail];
  return { text: all.length === 0 ? '' : `${all.join('\n')}\n`, elementsAdded, elementsDeleted, chainsChanged, setsChanged };
}

// ---- applying ----

export type NftRunner = (args: readonly string[], input?: string) => Promise<string>;

/** Runs `nft` on the host, or (tests) inside a named netns through `ip netns exec`. */
export function nftRunner(netns?: string, timeoutMs = 30_000): NftRunner {
  return (args, input) => {
    const [file, argv] = netns === undefined ? ['nft', [...args]] : ['ip', ['netns', 'exec', netns, 'nft', ...args]];
    return new Promise((resolve, reject) => {
      const child = execFile(file, argv, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new TwillError('BACKEND', `network policy: \`nft ${args.join(' ')}\` failed: ${stderr.trim() || err.message}`, { cause: err }));
        else resolve(stdout);
      });
      child.stdin?.on('error', () => { /* reported through the exit callback */ });
      child.stdin?.end(input ?? '');
    });
  };
}

export interface ApplyResult {
  mode: 'full' | 'incremental' | 'none';
  diff?: PolicyDiff;
  /** Set when an incremental transaction failed and the full one replaced it. */
  fallbackReason?: string;
}

/**
 * One drop counter. reason `policy`: packets of a combination of policies (namespace and policy
 * keys) that no rule allowed; `unknown-pod`: the new-pod guard (namespace '' and no policies).
 */
export interface DropCounter {
  reason: 'policy' | 'unknown-pod';
  direction: Direction;
  namespace: string;
  policies: string[];
  chain: string;
  packets: number;
  bytes: number;
}

export interface PolicyEnforcer {
  /**
   * Makes the kernel match the model: the whole table the first time, a diff afterwards.
   * `guardCidrs` overrides the enforcer's option for this apply (the agent guards only while
   * policies exist).
   */
  apply(model: PolicyModel, guardCidrs?: readonly string[]): Promise<ApplyResult>;
  /** Deletes the table (idempotent). */
  remove(): Promise<void>;
  /** Packets dropped per combination chain (namespace and policies), from the kernel's counters. */
  dropCounters(): Promise<DropCounter[]>;
  /** What was last installed, if anything. */
  installed(): NftPolicyState | undefined;
}

export interface EnforcerOptions {
  run?: NftRunner;
  netns?: string;
  table?: string;
  /** See RenderOptions.guardCidrs. */
  guardCidrs?: readonly string[];
}

export function createNftPolicyEnforcer(opts: EnforcerOptions = {}): PolicyEnforcer {
  const run = opts.run ?? nftRunner(opts.netns);
  const table = opts.table ?? POLICY_TABLE;
  let current: NftPolicyState | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };

  return {
    apply: (model, guardCidrs = opts.guardCidrs) => serial(async (): Promise<ApplyResult> => {
      const want = renderPolicyState(model, guardCidrs === undefined ? { table } : { table, guardCidrs });
      if (current) {
        const diff = renderDiff(current, want);
        if (diff.text === '') return { mode: 'none', diff };
        try {
          await run(['-f', '-'], diff.text);
          current = want;
          return { mode: 'incremental', diff };
        } catch (err) {
          // the table was changed behind our back (or deleted): replace it whole
          current = undefined;
          await run(['-f', '-'], renderFull(want));
          current = want;
          return { mode: 'full', fallbackReason: (err as Error).message };
        }
      }
      await run(['-f', '-'], renderFull(want));
      current = want;
      return { mode: 'full' };
    }),
    remove: () => serial(async () => {
      await run(['-f', '-'], `table ${POLICY_FAMILY} ${table}\ndelete table ${POLICY_FAMILY} ${table}\n`);
      current = undefined;
    }),
    dropCounters: () => serial(async () => {
      if (!current) return [];
      const combos = new Map(current.combos.map((c) => [c.chain, c]));
      const json = JSON.parse(await run(['-j', 'list', 'table', POLICY_FAMILY, table])) as { nftables: { rule?: { chain: string; expr: Record<string, unknown>[] } }[] };
      const out: DropCounter[] = [];
      for (const item of json.nftables) {
        if (!item.rule) continue;
        const chain = item.rule.chain;
        const combo = combos.get(chain);
        const base = chain === 'ingress' || chain === 'egress' ? chain : undefined;
        if (!combo && !base) continue;
        for (const e of item.rule.expr) {
          const c = e.counter as { packets: number; bytes: number } | undefined;
          if (!c) continue;
          if (combo) out.push({ reason: 'policy', direction: combo.direction, namespace: combo.namespace, policies: combo.policies, chain, packets: c.packets, bytes: c.bytes });
          else if (base) out.push({ reason: 'unknown-pod', direction: base, namespace: '', policies: [], chain, packets: c.packets, bytes: c.bytes });
        }
      }
      return out;
    }),
    installed: () => current,
  };
}
