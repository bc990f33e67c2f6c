// Processes the harness starts, and the last-resort cleanup. Every process is tracked by PID so
// destroy() stops exactly what the harness started (never by name). A synchronous exit hook
// (plus SIGINT/SIGTERM/SIGHUP) tears down whatever is still registered, so a crashed test run
// or a Ctrl-C in the demo leaves no namespace, link or process behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export interface ExitInfo { code: number | null; signal: NodeJS.Signals | null }

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  alive(): boolean;
  /** Collected stdout+stderr (when not written to a log file), capped at 1 MiB. */
  output(): string;
  /** Sends `signal`, waits up to `timeoutMs`, then SIGKILLs. Resolves with the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>;
}

export interface StartOptions {
  /** Append stdout and stderr to this file (else they are collected in memory). */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep stdin open as a pipe (for processes driven by JSON lines). */
  stdinPipe?: boolean;
}

const tracked = new Set<Proc>();

export function startProc(name: string, cmd: string, args: readonly string[], opts: StartOptions = {}): Proc {
  const fd = opts.logFile ? openSync(opts.logFile, 'a') : undefined;
  const out = fd ?? 'pipe';
  const child = spawn(cmd, args, { stdio: [opts.stdinPipe ? 'pipe' : 'ignore', out, out], env: opts.env ?? process.env });
  if (fd !== undefined) closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${cmd} ${args.join(' ')}`);
  let collected = '';
  const collect = (d: Buffer): void => { if (collected.length < 1 << 20) collected += d.toString('utf8'); };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let done = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.on('exit', (code, signal) => { done = true; tracked.delete(proc); resolve({ code, signal }); });
    child.on('error', () => { done = true; tracked.delete(proc); resolve({ code: null, signal: null }); });
  });
  const proc: Proc = {
    name,
    pid: child.pid,
    child,
    exited,
    alive: () => !done,
    output: () => collected,
    async stop(signal = 'SIGTERM', timeoutMs = 5000) {
      if (done) return exited;
      child.kill(signal);
      const t = setTimeout(() => { if (!done) child.kill('SIGKILL'); }, timeoutMs);
      const info = await exited;
      clearTimeout(t);
      return info;
    },
  };
  tracked.add(proc);
  return proc;
}

/** Every live process the harness started in this process (for self-tests and reports). */
export function trackedProcs(): readonly Proc[] {
  return [...tracked];
}

/** Collects a piped process's stdout lines; resolves when one matches. */
export function waitForLine(proc: Proc, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdout = proc.child.stdout;
    if (!stdout) { reject(new Error(`${proc.name}: stdout is not a pipe`)); return; }
    let buf = '';
    const t = setTimeout(() => { cleanup(); reject(new Error(`${proc.name}: no line matching ${re} within ${timeoutMs} ms; got ${JSON.stringify(buf.slice(-500))}`)); }, timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8');
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) { cleanup(); resolve(line); }
    };
    const onExit = (): void => { cleanup(); reject(new Error(`${proc.name} exited before printing ${re}; output ${JSON.stringify(buf.slice(-500))}`)); };
    function cleanup(): void { clearTimeout(t); stdout!.off('data', onData); proc.child.off('exit', onExit); }
    stdout.on('data', onData);
    proc.child.on('exit', onExit);
  });
}

// ---- last-resort cleanup -------------------------------------------------------------------

type SyncCleanup = () => void;
const cleanups = new Set<SyncCleanup>();
let hooked = false;

function runAll(): void {
  for (const p of tracked) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const c of [...cleanups]) { try { c(); } catch { /* best effort */ } }
  cleanups.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  runAll();
  process.off(sig, onSignal);
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

/** Registers a synchronous teardown run on exit or a fatal signal; returns its unregister. */
export function onProcessExit(fn: SyncCleanup): () => void {
  if (!hooked) {
    hooked = true;
    process.on('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  }
  cleanups.add(fn);
  return () => { cleanups.delete(fn); };
}
