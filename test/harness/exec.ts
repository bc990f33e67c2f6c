// Thin child-process helpers for the cluster harness. Everything the harness does to the kernel
// goes through iproute2 / sysctl run inside the target netns (`ip netns exec`), so the test
// process itself never changes namespace and a failing command always says what it ran.
import { spawn } from 'node:child_process';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve with a non-zero exit instead of throwing. */
  allowFail?: boolean;
}

export class ExecError extends Error {
  readonly result: ExecResult;
  constructor(cmd: string, args: readonly string[], result: ExecResult) {
    const why = result.signal ? `killed by ${result.signal}` : `exit ${result.code}`;
    super(`${cmd} ${args.join(' ')}: ${why}: ${(result.stderr || result.stdout).trim().slice(0, 2000)}`);
    this.name = 'ExecError';
    this.result = result;
  }
}

/** Runs a command to completion, collecting its output. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if ((code !== 0 || signal) && !opts.allowFail) reject(new ExecError(cmd, args, result));
      else resolve(result);
    });
    child.stdin.on('error', () => { /* command exited before reading its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command inside a network namespace. */
export function nsRun(netns: string, cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], opts);
}

/** `ip -n <netns> ...`; throws with the command line on failure. */
export async function ip(netns: string | null, ...args: string[]): Promise<string> {
  const full = netns ? ['-n', netns, ...args] : args;
  return (await run('ip', full)).stdout;
}

/** `ip -j -n <netns> ...` parsed; an empty output is an empty list. */
export async function ipJson<T>(netns: string, ...args: string[]): Promise<T[]> {
  const out = (await run('ip', ['-j', '-n', netns, ...args])).stdout.trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `intervalMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}
