// Datapath probes run from inside a netns: ping (iputils, for DF and intervals), long-running
// ping flows, and a TCP probe whose server reports the source address it saw — the one thing
// that proves "no NAT" (or, with --ip-masq, that NAT happened) from the receiver's side.
import { nsRun, run } from './exec.js';
import { startProc, waitForLine, type Proc } from './procs.js';

export interface PingOptions {
  count?: number;          // default 1
  /** ICMP payload bytes (-s). */
  size?: number;
  /** Set DF and refuse to fragment locally (-M do). */
  df?: boolean;
  intervalSec?: number;    // -i
  /** Per-reply wait (-W), default 1 s. */
  waitSec?: number;
  /** Overall deadline (-w). */
  deadlineSec?: number;
}

export interface PingResult {
  sent: number;
  received: number;
  errors: number;
  /** The kernel refused the packet locally (e.g. "message too long" with DF). */
  localError: boolean;
  rttAvgMs: number | undefined;
  ok: boolean;             // at least one reply and no loss
  output: string;
}

let pingChecked = false;
async function requireIputilsPing(): Promise<void> {
  if (pingChecked) return;
  const r = await run('ping', ['-V'], { allowFail: true }).catch(() => undefined);
  if (!r || !/iputils/.test(r.stdout + r.stderr)) {
    throw new Error('the harness needs iputils ping (Debian package iputils-ping; scripts/setup.sh installs it)');
  }
  pingChecked = true;
}

function pingArgs(to: string, o: PingOptions): string[] {
  const a = ['-n'];
  if (o.count !== undefined) a.push('-c', String(o.count));
  if (o.size !== undefined) a.push('-s', String(o.size));
  if (o.df) a.push('-M', 'do');
  if (o.intervalSec !== undefined) a.push('-i', String(o.intervalSec));
  a.push('-W', String(o.waitSec ?? 1));
  if (o.deadlineSec !== undefined) a.push('-w', String(o.deadlineSec));
  a.push(to);
  return a;
}

export function parsePing(output: string): PingResult {
  const stats = /(\d+) packets transmitted, (\d+) received(?:, \+(\d+) errors)?/.exec(output);
  const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(output);
  const sent = Number(stats?.[1] ?? 0);
  const received = Number(stats?.[2] ?? 0);
  return {
    sent, received,
    errors: Number(stats?.[3] ?? 0),
    localError: /local error|message too long/i.test(output),
    rttAvgMs: rtt ? Number(rtt[1]) : undefined,
    ok: sent > 0 && received === sent,
    output,
  };
}

export async function ping(fromNetns: string, to: string, o: PingOptions = {}): Promise<PingResult> {
  await requireIputilsPing();
  const opts = { count: 1, ...o };
  const budget = (opts.deadlineSec ?? (opts.count * (opts.intervalSec ?? 1) + (opts.waitSec ?? 1))) + 5;
  const r = await nsRun(fromNetns, 'ping', pingArgs(to, opts), { allowFail: true, timeoutMs: budget * 1000 });
  return parsePing(r.stdout + r.stderr);
}

/** A ping running in the background until stop() (SIGINT → ping prints its summary). */
export interface PingFlow {
  readonly proc: Proc;
  stop(): Promise<PingResult>;
}

export async function startPingFlow(fromNetns: string, to: string, intervalSec = 0.01): Promise<PingFlow> {
  await requireIputilsPing();
  const proc = startProc(`ping ${fromNetns}→${to}`, 'ip', ['netns', 'exec', fromNetns, 'ping', '-n', '-i', String(intervalSec), '-W', '1', to]);
  await waitForLine(proc, /bytes from/, 5000);
  return {
    proc,
    async stop() {
      await proc.stop('SIGINT', 5000);
      return parsePing(proc.output());
    },
  };
}

// ---- TCP probe -----------------------------------------------------------------------------

export const ECHO_PORT = 7777;

// Writes back the peer address it saw, then closes. CommonJS, run with `node -e`.
const ECHO_SERVER = `const net=require('net');
const s=net.createServer(c=>{c.on('error',()=>{});c.end(String(c.remoteAddress).replace(/^::ffff:/,'')+'\\n');});
s.listen(${ECHO_PORT},'0.0.0.0',()=>console.log('listening'));`;

/** One source-reporting TCP server per netns, started on first use and kept until destroy. */
export class EchoServers {
  private readonly servers = new Map<string, Promise<Proc>>();

  ensure(netns: string): Promise<Proc> {
    let p = this.servers.get(netns);
    if (!p) {
      p = (async () => {
        const proc = startProc(`echo ${netns}`, 'ip', ['netns', 'exec', netns, process.execPath, '-e', ECHO_SERVER]);
        await waitForLine(proc, /listening/, 10_000);
        return proc;
      })();
      p.catch(() => this.servers.delete(netns));
      this.servers.set(netns, p);
    }
    return p;
  }

  async stopAll(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.stop('SIGKILL', 1000)));
  }
}

export interface TcpProbeResult { ok: boolean; seenSource: string | undefined; ms: number; error?: string }

/** Connects from `fromNetns` to `toIp` (whose server must already run) and returns what it saw. */
export async function tcpConnect(fromNetns: string, toIp: string, timeoutSec = 3): Promise<TcpProbeResult> {
  const t0 = performance.now();
  const r = await nsRun(fromNetns, 'busybox', ['nc', '-w', String(timeoutSec), toIp, String(ECHO_PORT)], {
    allowFail: true, timeoutMs: (timeoutSec + 2) * 1000,
  });
  const ms = performance.now() - t0;
  const seen = r.stdout.trim();
  if (r.code === 0 && /^\d+\.\d+\.\d+\.\d+$/.test(seen)) return { ok: true, seenSource: seen, ms };
  return { ok: false, seenSource: undefined, ms, error: (r.stderr || r.stdout || `exit ${r.code}`).trim() };
}
