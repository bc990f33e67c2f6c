// The store lock with the real libc flock(2) (koffi under Node): exclusive between open file
// descriptions, released on unlock, and compatible with flock(1) as host-local's go-filemutex.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withFileLock } from '../../../cni/ipam/lock.js';
import { libcFlock } from '../../../cni/kernel.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'twill-lock-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('IPAM store lock (flock)', () => {
  it('serialises concurrent holders in one process', async () => {
    const flock = libcFlock();
    const path = join(dir, 'lock');
    let inside = 0;
    let max = 0;
    await Promise.all(Array.from({ length: 8 }, () => withFileLock(path, { flock }, async () => {
      inside++;
      max = Math.max(max, inside);
      await new Promise((r) => setTimeout(r, 5));
      inside--;
    })));
    expect(max).toBe(1);
  });

  it('waits for another process holding flock(2) on the same file (host-local compatible)', async () => {
    const path = join(dir, 'lock');
    execFileSync('touch', [path]);
    const holder = spawn('flock', ['-x', path, 'sleep', '0.4'], { stdio: 'ignore' });
    const closed = new Promise((r) => holder.on('close', r));
    await new Promise((r) => setTimeout(r, 150));
    const t0 = Date.now();
    await withFileLock(path, { flock: libcFlock() }, () => undefined);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await closed;
  });

  it('gives up with "try again later" (code 11) after the timeout', async () => {
    const path = join(dir, 'lock');
    const flock = libcFlock();
    await withFileLock(path, { flock }, async () => {
      await expect(withFileLock(path, { flock, timeoutMs: 50 }, () => undefined)).rejects.toMatchObject({ code: 11 });
    });
  });
});
