// Fresh network namespaces per test, removed in afterEach even when the test failed.
import { execFileSync } from 'node:child_process';
import { afterEach } from 'vitest';
import { uniquePrefix } from '../../util/root.js';

export const sh = (cmd: string, ...args: string[]): string =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Registers cleanup; `make()` creates a netns with lo up and returns its name and path. */
export function netnsFixture(tag = 'tnl') {
  const prefix = uniquePrefix(tag);
  const live = new Set<string>();
  let n = 0;
  afterEach(() => {
    for (const name of live) {
      try { sh('ip', 'netns', 'del', name); } catch { /* already gone */ }
    }
    live.clear();
  });
  return {
    make(loUp = true): { name: string; path: string; ip: (...a: string[]) => string } {
      const name = `${prefix}${n++}`;
      sh('ip', 'netns', 'add', name);
      live.add(name);
      if (loUp) sh('ip', '-n', name, 'link', 'set', 'lo', 'up');
      return { name, path: `/var/run/netns/${name}`, ip: (...a: string[]) => sh('ip', '-n', name, ...a) };
    },
  };
}
