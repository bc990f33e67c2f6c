// `twilld status`: asks a running agent for its AgentStatus (GET /status on the health server)
// and renders it for a person. Rendering is a pure function of (status, now, colour) so it is
// tested without a terminal or a clock; colour only when stdout is a TTY and NO_COLOR is unset.
// The CLI talks to the agent over HTTP rather than reading kernel state itself: the agent is the
// one that knows which peers are valid, pending or failed and why.
import { isIPv4 } from 'node:net';
import { DEFAULT_HEALTHZ_PORT } from './constants.js';
import type { AgentStatus, PeerProgramState, PeerStatus, ReconcileStatus } from './state.js';

/** Where the CLI looks by default: the agent binds all addresses, loopback always reaches it. */
export const DEFAULT_STATUS_IP = '127.0.0.1';

export interface RenderOptions { color: boolean; now: number }

type Paint = (code: number, s: string) => string;

const LABEL = 17;

function painter(color: boolean): Paint {
  return color ? (code, s) => `\x1b[${code}m${s}\x1b[0m` : (_code, s) => s;
}

const STATE_COLOR: Record<PeerProgramState, number> = { programmed: 32, pending: 33, failed: 31, invalid: 35 };

/** "2d 3h", "23h 59m", "4m 10s", "12s": the two most significant units. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const units: [string, number][] = [['d', Math.floor(total / 86400)], ['h', Math.floor(total / 3600) % 24], ['m', Math.floor(total / 60) % 60], ['s', total % 60]];
  const first = units.findIndex(([, v]) => v > 0);
  if (first < 0) return '0s';
  return units.slice(first, first + 2).filter(([, v], i) => i === 0 || v > 0).map(([u, v]) => `${v}${u}`).join(' ');
}

export function formatRelative(at: number, now: number): string {
  return at >= now ? `in ${formatDuration(at - now)}` : `${formatDuration(now - at)} ago`;
}

export function formatAbsolute(at: number): string {
  return `${new Date(at).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function subnetKey(subnet: string): [number, bigint, number] {
  const [addr = '', len = '0'] = subnet.split('/');
  if (isIPv4(addr)) return [4, addr.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n), Number(len)];
  return [6, 0n, Number(len)];
}

/** Numeric order for IPv4 (10.244.9.0 before 10.244.10.0), then everything else by text. */
export function compareSubnets(a: string, b: string): number {
  const [fa, va, la] = subnetKey(a);
  const [fb, vb, lb] = subnetKey(b);
  if (fa !== fb) return fa - fb;
  if (fa === 4 && va !== vb) return va < vb ? -1 : 1;
  if (fa === 6 && a !== b) return a < b ? -1 : 1;
  return la - lb;
}

const line = (label: string, value: string) => `${label.padEnd(LABEL)}${value}`;

function header(s: AgentStatus, o: RenderOptions, p: Paint): string[] {
  return [p(1, `twilld ${s.version} on ${s.node} (${s.mode} mode), up ${formatDuration(o.now - s.startedAt)}`)];
}

function readiness(s: AgentStatus, p: Paint): string[] {
  if (s.ready) return [line('Ready:', p(32, 'yes'))];
  const reasons = s.notReadyReasons.length > 0 ? s.notReadyReasons : ['(no reason given)'];
  return [line('Ready:', p(31, 'no')), ...reasons.map((r) => `${''.padEnd(LABEL)}- ${r}`)];
}

function expiry(exp: number | null | undefined, now: number): string {
  if (exp === null) return 'never (reservation)';
  if (exp === undefined) return 'unknown';
  return `${formatAbsolute(exp)} (${formatRelative(exp, now)})`;
}

function lease(s: AgentStatus, o: RenderOptions, p: Paint): string[] {
  const l = s.lease;
  const stateColor = l.state === 'alive' ? 32 : l.state === 'pending' ? 33 : 31;
  const out = [line('Lease:', p(stateColor, l.state))];
  const kv = (k: string, v: string | undefined) => { if (v !== undefined) out.push(line(`  ${k}`, v)); };
  kv('subnet', l.subnet);
  kv('IPv6 subnet', l.ipv6Subnet);
  kv('public IP', l.publicIP);
  kv('VTEP MAC', l.vtepMAC);
  if (l.subnet !== undefined || l.ipv6Subnet !== undefined) kv('expires', expiry(l.expiration, o.now));
  return out;
}

function device(s: AgentStatus): string[] {
  const d = s.device;
  return [line('Device:', d ? `${d.name} (index ${d.index}, MTU ${d.mtu})` : 'not set up yet')];
}

function reconcile(r: ReconcileStatus | undefined, o: RenderOptions, p: Paint): string[] {
  if (r === undefined) return [line('Last reconcile:', 'none yet')];
  const result = r.ok ? p(32, 'ok') : p(31, 'failed');
  const errors = r.errors > 0 ? p(31, `${r.errors} errors`) : '0 errors';
  return [line('Last reconcile:', `${formatRelative(r.at, o.now)}, ${result}, ${formatMs(r.durationMs)}, ${r.changes} changes, ${errors}, trigger ${r.trigger}`)];
}

function repairs(s: AgentStatus): string[] {
  const entries = Object.entries(s.repairs).filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return [line('Repairs:', 'none')];
  const total = entries.reduce((a, [, n]) => a + n, 0);
  return [line('Repairs:', `${entries.map(([k, n]) => `${k} ${n}`).join(', ')} (total ${total})`)];
}

function peerSummary(peers: PeerStatus[]): string {
  const order: PeerProgramState[] = ['programmed', 'pending', 'failed', 'invalid'];
  const parts = order.map((st) => [st, peers.filter((x) => x.state === st).length] as const).filter(([, n]) => n > 0);
  return parts.length === 0 ? '0' : `${peers.length} (${parts.map(([st, n]) => `${n} ${st}`).join(', ')})`;
}

/** Columns padded on the plain text, then coloured, so ANSI codes never break the alignment. */
export function peerTable(peers: PeerStatus[], p: Paint): string[] {
  if (peers.length === 0) return [];
  const sorted = [...peers].sort((a, b) => compareSubnets(a.subnet, b.subnet) || a.key.localeCompare(b.key));
  const withReason = sorted.some((x) => x.reason !== undefined);
  const head = ['SUBNET', 'PUBLIC IP', 'VTEP MAC', 'STATE', ...(withReason ? ['REASON'] : [])];
  const rows = sorted.map((x) => [x.subnet, x.publicIP, x.vtepMAC, x.state, ...(withReason ? [x.reason ?? ''] : [])]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[], paint: (i: number, c: string) => string) => {
    let last = cells.length - 1;
    while (last > 0 && cells[last] === '') last--;
    const shown = cells.slice(0, last + 1);
    return `  ${shown.map((c, i) => paint(i, c) + (i === last ? '' : ' '.repeat((widths[i] ?? 0) - c.length))).join('  ')}`;
  };
  return [
    '',
    fmt(head, (_i, c) => p(1, c)),
    ...rows.map((r, ri) => fmt(r, (i, c) => (i === 3 ? p(STATE_COLOR[sorted[ri]?.state ?? 'pending'], c) : c))),
  ];
}

/** NetworkPolicy: the summary, every rejected policy with its reason, and per local pod the policies in force. */
export function policySection(s: AgentStatus, o: RenderOptions, p: Paint): string[] {
  const ps = s.policy;
  if (!ps) return [];
  const state = ps.enforced ? p(32, 'enforced') : p(33, 'not enforced yet');
  const last = ps.lastApply ? `, last update ${formatRelative(ps.lastApply.at, o.now)} (${formatMs(ps.lastApply.ms)})` : '';
  const out = [line('Network policy:', `${state}: ${ps.active} active here, ${ps.idle} idle, ${ps.rejected.length} rejected${ps.guard ? ', new-pod guard on' : ''}${last}`)];
  for (const r of ps.rejected) out.push(`${''.padEnd(LABEL)}${p(31, 'rejected')} ${r.namespace}/${r.name}: ${r.field}: ${r.reason}`);
  const names = (keys: string[]) => (keys.length === 0 ? '-' : keys.map((k) => k.slice(k.indexOf('/') + 1)).join(','));
  const rows = ps.pods.map((x) => [`${x.namespace}/${x.name}`, x.ips.join(','), names(x.ingress), names(x.egress)]);
  if (rows.length === 0) return out;
  const head = ['POD', 'IP', 'INGRESS POLICIES', 'EGRESS POLICIES'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}`;
  return [...out, '', p(1, fmt(head)), ...rows.map(fmt)];
}

export function renderStatus(s: AgentStatus, opts: RenderOptions): string {
  const p = painter(opts.color);
  return [
    ...header(s, opts, p),
    ...readiness(s, p),
    ...lease(s, opts, p),
    ...device(s),
    ...reconcile(s.lastReconcile, opts, p),
    ...repairs(s),
    line('Peers:', peerSummary(s.peers)),
    ...peerTable(s.peers, p),
    ...policySection(s, opts, p),
  ].join('\n') + '\n';
}

// ---- the command --------------------------------------------------------------------------

export interface StatusIO {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  isTTY: boolean;
  fetch: typeof fetch;
  now: () => number;
}

const USAGE = `usage: twilld status [--healthz-ip IP] [--healthz-port PORT] [--json] [--no-color]

Shows the running agent's lease, readiness, last reconcile, repairs and peers, as reported by
GET /status on its health server. Flags also read TWILLD_HEALTHZ_IP / TWILLD_HEALTHZ_PORT.
  --healthz-ip     address of the agent's health server (default ${DEFAULT_STATUS_IP})
  --healthz-port   its port (default ${DEFAULT_HEALTHZ_PORT})
  --json           print the raw status JSON
  --no-color       never colour (also: NO_COLOR set, or stdout not a terminal)
`;

interface StatusFlags { ip: string; port: string; json: boolean; color: boolean; help: boolean }

class UsageError extends Error {}

function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): StatusFlags {
  const f: StatusFlags = { ip: env.TWILLD_HEALTHZ_IP ?? DEFAULT_STATUS_IP, port: env.TWILLD_HEALTHZ_PORT ?? String(DEFAULT_HEALTHZ_PORT), json: false, color: true, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${name}: needs a value`);
      return v;
    };
    if (name === '--healthz-ip') f.ip = value();
    else if (name === '--healthz-port') f.port = value();
    else if (name === '--json') f.json = true;
    else if (name === '--no-color') f.color = false;
    else if (name === '--help' || name === '-h') f.help = true;
    else throw new UsageError(`unknown argument: ${JSON.stringify(arg)}`);
  }
  if (!/^\d+$/.test(f.port) || Number(f.port) > 65535) throw new UsageError(`--healthz-port: ${JSON.stringify(f.port)} is invalid: must be a port number 1-65535`);
  if (Number(f.port) === 0) throw new UsageError('--healthz-port: 0 means the health server is disabled; start the agent with --healthz-port to use `twilld status`');
  return f;
}

export function statusUrl(ip: string, port: string | number): string {
  const host = ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/status`;
}

function causeOf(err: unknown): string {
  const c = (err as { cause?: { code?: string; message?: string } }).cause;
  return c?.code ?? c?.message ?? (err instanceof Error ? err.message : String(err));
}

const defaultIO = (): StatusIO => ({
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: process.stdout.isTTY === true,
  fetch: globalThis.fetch,
  now: () => Date.now(),
});

/** `twilld status [flags]`; returns the exit code (0 ok, 1 agent unreachable/bad reply, 2 usage). */
export async function runStatusCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: StatusIO = defaultIO()): Promise<number> {
  let flags: StatusFlags;
  try {
    flags = parseFlags(argv, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`twilld status: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) { io.stdout(USAGE); return 0; }
  const url = statusUrl(flags.ip, flags.port);
  let body: string;
  try {
    const res = await io.fetch(url, { signal: AbortSignal.timeout(5_000) });
    body = await res.text();
    if (!res.ok) { io.stderr(`twilld status: ${url} answered HTTP ${res.status}: ${body.trim()}\n`); return 1; }
  } catch (err) {
    io.stderr(`twilld status: cannot reach the agent at ${url} (${causeOf(err)}).\n` +
      'Is twilld running on this node, with its health server on this address and port? Use --healthz-ip / --healthz-port.\n');
    return 1;
  }
  let status: AgentStatus;
  try {
    status = JSON.parse(body) as AgentStatus;
    if (typeof status !== 'object' || status === null || !Array.isArray(status.peers) || typeof status.lease !== 'object') throw new Error('not an AgentStatus');
  } catch (err) {
    io.stderr(`twilld status: ${url} did not return an agent status (${err instanceof Error ? err.message : String(err)})\n`);
    return 1;
  }
  if (flags.json) { io.stdout(`${JSON.stringify(status, null, 2)}\n`); return 0; }
  const color = flags.color && io.isTTY && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb';
  io.stdout(renderStatus(status, { color, now: io.now() }));
  return 0;
}
