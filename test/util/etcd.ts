// A real etcd for tests and benchmarks: free ports, a tmpfs data dir (etcd 3.4 has no
// --unsafe-no-fsync; /dev/shm makes fsync cheap instead), health-checked start, stop by PID.
// The handle can halt and start again on the SAME endpoint and data (outage tests), pause and
// resume the process (SIGSTOP/SIGCONT: a hung server), and is killed on process exit so a
// crashed test run leaves no etcd behind. Runs inside a netns when asked (`ip netns exec`).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, createWriteStream, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartEtcdOptions {
  /** Address to serve clients on (default 127.0.0.1). */
  host?: string;
  /** Run inside this network namespace (`ip netns exec <netns> etcd …`). */
  netns?: string;
  /** Data directory (default: a fresh temp dir, removed by stop()). A given dir is kept. */
  dataDir?: string;
  /** Client port (default: a free one). */
  clientPort?: number;
  /** Also append etcd's output here. */
  logFile?: string;
  /** Extra etcd flags, e.g. ['--auto-compaction-mode=revision', '--auto-compaction-retention=100']. */
  extraArgs?: string[];
  /** How long to wait for health (default 20 s). */
  startTimeoutMs?: number;
  /** Serve clients over TLS (https endpoint); with a CA, client certificates are required. */
  tls?: { certFile: string; keyFile: string; trustedCaFile?: string; clientCertFile?: string; clientKeyFile?: string };
}

export interface EtcdHandle {
  /** http://host:port — what clients connect to. */
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly dataDir: string;
  /** PID of the running etcd (undefined while halted). */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Stops etcd (SIGTERM, then SIGKILL) and removes the data dir if we created it. */
  stop(): Promise<void>;
  /** Stops etcd but keeps its data: start() brings it back on the same endpoint. */
  halt(): Promise<void>;
  /** Starts (again) on the same endpoint and data dir; resolves when healthy. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server hangs without closing connections. */
  pause(): void;
  resume(): void;
  kill(signal?: NodeJS.Signals): void;
  /** The last lines etcd printed (for failure messages). */
  logTail(): string;
  /** Runs etcdctl (v3) against this server (inside the netns when there is one); returns stdout. */
  ctl(args: readonly string[]): Promise<string>;
}

const live = new Set<ChildProcess>();
let exitHook = false;

function killAllOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const p of live) if (p.pid !== undefined && p.exitCode === null) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
  });
}

/** Ports in LISTEN state in our netns (from /proc, no sockets opened). */
function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && cols[1]) ports.add(parseInt(cols[1].split(':')[1] ?? '0', 16));
    }
  }
  return ports;
}

/** A port pair that nothing listens on (20000–31999: below the ephemeral range). */
function freePorts(netns: string | undefined): [number, number] {
  const busy = netns ? new Set<number>() : listeningPorts();
  for (;;) {
    const a = 20000 + 2 * Math.floor(Math.random() * 6000);
    if (!busy.has(a) && !busy.has(a + 1)) return [a, a + 1];
  }
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: timeoutMs, env: { ...process.env, ETCDCTL_API: '3' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

class Etcd implements EtcdHandle {
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly dataDir: string;
  private proc: ChildProcess | undefined;
  private tail: string[] = [];
  private log: WriteStream | undefined;
  private readonly o: StartEtcdOptions;
  private readonly ownDir: string | undefined;
  private readonly peerUrl: string;
  private spawnError: Error | undefined;

  constructor(o: StartEtcdOptions, ports: [number, number]) {
    this.o = o;
    const host = o.host ?? '127.0.0.1';
    const h = host.includes(':') ? `[${host}]` : host;
    this.endpoint = `${o.tls ? 'https' : 'http'}://${h}:${ports[0]}`;
    this.clientUrl = this.endpoint;
    this.peerUrl = `http://127.0.0.1:${ports[1]}`;
    if (o.dataDir) {
      this.dataDir = o.dataDir;
    } else {
      this.ownDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'twill-etcd-'));
      this.dataDir = join(this.ownDir, 'data');
    }
    if (o.logFile) this.log = createWriteStream(o.logFile, { flags: 'a' });
  }

  get pid(): number | undefined { return this.running ? this.proc?.pid : undefined; }
  get running(): boolean { return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null; }

  private args(): string[] {
    return [
      '--name', 'twill-test', '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint, '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', this.peerUrl, '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', `twill-test=${this.peerUrl}`, '--initial-cluster-state', 'new',
      '--logger', 'zap', '--log-level', 'warn', '--log-outputs', 'stderr',
      '--heartbeat-interval', '50', '--election-timeout', '500', '--snapshot-count', '20000',
      ...this.tlsServerArgs(),
      ...(this.o.extraArgs ?? []),
    ];
  }

  private tlsServerArgs(): string[] {
    const t = this.o.tls;
    if (!t) return [];
    return ['--cert-file', t.certFile, '--key-file', t.keyFile,
      ...(t.trustedCaFile ? ['--trusted-ca-file', t.trustedCaFile, '--client-cert-auth'] : [])];
  }

  /** etcdctl flags that reach this server (TLS material when needed). */
  private ctlFlags(): string[] {
    const t = this.o.tls;
    return [`--endpoints=${this.endpoint}`, ...(t?.trustedCaFile ? [`--cacert=${t.trustedCaFile}`] : []),
      ...(t?.clientCertFile ? [`--cert=${t.clientCertFile}`, `--key=${t.clientKeyFile ?? ''}`] : [])];
  }

  async start(): Promise<void> {
    if (this.running) return;
    mkdirSync(this.dataDir, { recursive: true });
    const [cmd, args] = this.o.netns ? ['ip', ['netns', 'exec', this.o.netns, 'etcd', ...this.args()]] : ['etcd', this.args()];
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    live.add(p);
    killAllOnExit();
    const onOut = (b: Buffer) => {
      this.log?.write(b);
      this.tail.push(...b.toString().split('\n').filter(Boolean));
      if (this.tail.length > 40) this.tail = this.tail.slice(-40);
    };
    p.stdout?.on('data', onOut);
    p.stderr?.on('data', onOut);
    p.on('exit', () => live.delete(p));
    p.on('error', (err) => { this.spawnError = err; live.delete(p); });
    await this.waitHealthy(p);
  }

  private async healthy(): Promise<boolean> {
    if (this.o.netns || this.o.tls) {
      const ctl = ['etcdctl', ...this.ctlFlags(), '--dial-timeout=1s', 'endpoint', 'health'];
      const r = this.o.netns ? await run('ip', ['netns', 'exec', this.o.netns, ...ctl], 3000) : await run(ctl[0]!, ctl.slice(1), 3000);
      return r.code === 0;
    }
    try {
      const res = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      const body = await res.json() as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  }

  private async waitHealthy(p: ChildProcess): Promise<void> {
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 20_000);
    while (Date.now() < deadline) {
      if (this.spawnError) throw new Error(`cannot run etcd (apt-get install etcd-server): ${this.spawnError.message}`);
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`etcd exited (${p.exitCode ?? p.signalCode}) while starting on ${this.endpoint}:\n${this.logTail()}`);
      if (await this.healthy()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.kill('SIGKILL');
    throw new Error(`etcd on ${this.endpoint} not healthy after ${this.o.startTimeoutMs ?? 20_000} ms:\n${this.logTail()}`);
  }

  async halt(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    this.resume();
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  async stop(): Promise<void> {
    await this.halt();
    this.log?.end();
    if (this.ownDir) rmSync(this.ownDir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.start();
  }

  pause(): void { this.kill('SIGSTOP'); }
  resume(): void { this.kill('SIGCONT'); }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.pid;
    if (pid !== undefined) { try { process.kill(pid, signal); } catch { /* already gone */ } }
  }

  logTail(): string { return this.tail.join('\n'); }

  async ctl(args: readonly string[]): Promise<string> {
    const base = ['etcdctl', ...this.ctlFlags(), '--dial-timeout=2s', '--command-timeout=10s', ...args];
    const r = this.o.netns ? await run('ip', ['netns', 'exec', this.o.netns, ...base], 15_000) : await run(base[0]!, base.slice(1), 15_000);
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }
}

/** Starts a single-member etcd and waits until it is healthy. */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdHandle> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const ports: [number, number] = opts.clientPort ? [opts.clientPort, opts.clientPort + 1] : freePorts(opts.netns);
    const e = new Etcd(opts, ports);
    try {
      await e.start();
      return e;
    } catch (err) {
      lastErr = err;
      await e.stop().catch(() => undefined);
      // A port taken between the check and the bind: try other ports.
      if (opts.clientPort || !/address already in use/.test(String(err))) break;
    }
  }
  throw lastErr;
}
