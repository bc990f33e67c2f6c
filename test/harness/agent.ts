// One twilld per node, run exactly as an operator would: `ip netns exec <node> node bin/twilld.js`
// with its own subnet file, log file and health port inside the node netns. `ip netns exec`
// execs the command, so the tracked PID is the agent itself (kill -9 hits the agent, not a shell).
import { appendFileSync } from 'node:fs';
import type { AgentStatus } from '../../agent/state.js';
import type { AgentBuild } from './dist-snapshot.js';
import { httpGet } from './http.js';
import { startProc, type ExitInfo, type Proc } from './procs.js';

export const HEALTHZ_PORT = 8471;

export interface AgentSpec {
  name: string;
  netns: string;
  logFile: string;
  /** Full flag list (store flags, node flags, extra flags). */
  args: () => string[];
  env: () => Record<string, string>;
}

export class Agent {
  readonly spec: AgentSpec;
  private proc: Proc | undefined;
  private starts = 0;

  constructor(spec: AgentSpec) { this.spec = spec; }

  get pid(): number | undefined { return this.proc?.alive() ? this.proc.pid : undefined; }
  get running(): boolean { return this.proc?.alive() ?? false; }
  get exited(): Promise<ExitInfo> | undefined { return this.proc?.exited; }
  get startCount(): number { return this.starts; }

  /** Starts `node <build>/bin/twilld.js` in the node netns (build: see dist-snapshot.ts). */
  start(build: AgentBuild, extraArgs: readonly string[] = []): void {
    if (this.proc?.alive()) throw new Error(`${this.spec.name}: agent already running (pid ${this.proc.pid})`);
    const args = [...this.spec.args(), ...extraArgs];
    appendFileSync(this.spec.logFile, `\n=== harness: start #${++this.starts} at ${new Date().toISOString()} (${build.twilldBin}): twilld ${args.join(' ')}\n`);
    this.proc = startProc(`twilld ${this.spec.name}`, 'ip', ['netns', 'exec', this.spec.netns, process.execPath, build.twilldBin, ...args], {
      logFile: this.spec.logFile,
      env: { ...process.env, ...this.spec.env() },
    });
  }

  /** SIGTERM by default; SIGKILL after `timeoutMs`. Resolves with the exit (undefined if not running). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<ExitInfo | undefined> {
    if (!this.proc?.alive()) return undefined;
    const info = await this.proc.stop(signal, timeoutMs);
    appendFileSync(this.spec.logFile, `=== harness: agent exited (${signal} sent): code ${info.code} signal ${info.signal}\n`);
    return info;
  }

  async healthz(): Promise<number> { return (await httpGet(this.spec.netns, url('/healthz'))).status; }
  async readyz(): Promise<number> { return (await httpGet(this.spec.netns, url('/readyz'))).status; }

  async status(): Promise<AgentStatus> {
    const r = await httpGet(this.spec.netns, url('/status'));
    if (r.status !== 200) throw new Error(`${this.spec.name}: GET /status returned ${r.status || 'no connection'}`);
    return JSON.parse(r.body) as AgentStatus;
  }
}

const url = (path: string): string => `http://127.0.0.1:${HEALTHZ_PORT}${path}`;
