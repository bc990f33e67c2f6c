// Runs nft / iptables-* without a shell (no quoting bugs, no injection); rule sets go through
// stdin so a whole replacement is one command and one kernel transaction.
import { execFile } from 'node:child_process';
import { TwillError } from '../../lib/errors.js';

export interface RunResult { stdout: string; stderr: string }

export type Runner = (cmd: string, args: readonly string[], input?: string) => Promise<RunResult>;

export class CommandError extends TwillError {
  readonly exitCode: number | string | undefined;
  readonly stderr: string;
  constructor(cmd: string, args: readonly string[], exitCode: number | string | undefined, stderr: string, cause: unknown) {
    const what = `${cmd} ${args.join(' ')}`.trim();
    super('BACKEND', `traffic rules: \`${what}\` failed (exit ${String(exitCode)}): ${stderr.trim() || String(cause)}`, { cause });
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** A runner bound to the host, or (tests) to a named netns through `ip netns exec`. */
export function createRunner(netns?: string, timeoutMs = 30_000): Runner {
  return (cmd, args, input) => {
    const [file, argv] = netns === undefined ? [cmd, [...args]] : ['ip', ['netns', 'exec', netns, cmd, ...args]];
    return new Promise((resolve, reject) => {
      const child = execFile(file, argv, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException & { code?: number | string }).code;
          reject(new CommandError(cmd, args, code, stderr, err));
        } else resolve({ stdout, stderr });
      });
      child.stdin?.on('error', () => { /* reported through the exit callback */ });
      child.stdin?.end(input ?? '');
    });
  };
}
