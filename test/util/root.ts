// Privilege gating: tests that need root skip with a clear message when not root.
import { describe } from 'vitest';
import { randomBytes } from 'node:crypto';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** `describe` that runs only as root, else skips with the reason in its title. */
export function describeRoot(name: string, fn: () => void): void {
  if (isRoot) describe(name, fn);
  else describe.skip(`${name} [skipped: needs root (network namespaces, netlink writes)]`, fn);
}

/** A unique netns name prefix for one test run: `tw<pid36><rand>-`. Short: IFNAMSIZ is 16. */
export function uniquePrefix(tag = 'tw'): string {
  return `${tag}${process.pid.toString(36)}${randomBytes(2).toString('hex')}-`;
}
