// Many plugins at once and plugins that die: 200 ADDs at concurrency 20 through the executable
// give 200 distinct addresses (the flock-protected store), DEL of all leaves no record and no
// veth; a plugin SIGKILLed at any step of ADD leaves nothing that GC cannot reclaim, and never a
// wedged lock (flock dies with its holder), also when killed while it holds the lock.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeRoot } from '../../util/root.js';
import { ensurePluginBuilt } from '../../util/pods.js';
import { hostVethName } from '../../../cni/link/names.js';
import { TMP_PREFIX } from '../../../cni/ipam/store.js';
import { TestNode } from './node.js';

async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

describeRoot('CNI plugin under concurrency and kills (integration)', () => {
  let node: TestNode;
  beforeAll(() => { node = new TestNode(ensurePluginBuilt()); });
  afterAll(() => node?.cleanup());

  it('200 ADDs at concurrency 20 -> 200 distinct addresses; DEL all -> nothing left', async () => {
    const pods = Array.from({ length: 200 }, () => node.pod());
    const addrs = new Map<string, string>();
    await pool(pods, 20, async (p) => {
      const r = await node.exec('ADD', node.conf(), { containerId: p.id, netns: p.netns });
      expect(r.code, r.raw + r.stderr).toBe(0);
      addrs.set(p.id, String((r.stdout as { ips: { address: string }[] }).ips[0]!.address));
    });
    expect(new Set(addrs.values()).size).toBe(200);
    expect(Object.keys(node.records())).toHaveLength(200);
    const owners = Object.entries(node.records()).map(([ip, rec]) => [rec.split('\r\n')[0], ip]);
    for (const [id, ip] of owners) expect(`${addrs.get(id!)}`).toBe(`${ip}/24`);
    // Each pod really holds its address.
    for (const p of pods.slice(0, 5)) expect(node.ip(p.name, 'addr', 'show', 'eth0')).toContain(addrs.get(p.id)!);

    await pool(pods, 20, async (p) => {
      const r = await node.exec('DEL', node.conf(), { containerId: p.id, netns: p.netns });
      expect(r.code, r.raw + r.stderr).toBe(0);
    });
    expect(node.records()).toEqual({});
    expect(node.hostLinks().filter((l) => /^tw[0-9a-f]{11}$/.test(l))).toEqual([]);
    for (const p of pods) node.dropPod(p.name);
  }, 240_000);

  it.each(['ipam', 'bridge', 'veth', 'pod'])('a plugin killed after step %s leaves nothing GC cannot reclaim', async (step) => {
    const victim = node.pod();
    const live = node.pod();
    expect((await node.exec('ADD', node.conf(), { containerId: live.id, netns: live.netns })).code).toBe(0);
    const k = killable();
    const running = node.exec('ADD', node.conf(), { containerId: victim.id, netns: victim.netns, extra: { TWILL_CNI_PAUSE_AT: step } }, k.opts);
    // Wait until the plugin reports it is frozen right after `step`, then SIGKILL it.
    await k.killWhenPaused();
    const r = await running;
    expect(r.signal).toBe('SIGKILL');
    expect(r.stderr).toContain(`TWILL_PAUSED ${step}`);

    // The lock is not wedged: another ADD goes through at once.
    const other = node.pod();
    expect((await node.exec('ADD', node.conf(), { containerId: other.id, netns: other.netns })).code).toBe(0);

    // GC with the live attachments reclaims everything of the victim and nothing else.
    const gc = await node.exec('GC', node.conf({ 'cni.dev/valid-attachments': [live, other].map((p) => ({ containerID: p.id, ifname: 'eth0' })) }), {});
    expect(gc.code, gc.raw).toBe(0);
    expect(Object.values(node.records()).sort()).toEqual([`${live.id}\r\neth0`, `${other.id}\r\neth0`].sort());
    expect(node.hostLinks()).not.toContain(hostVethName(victim.id, 'eth0'));
    expect(node.hostLinks()).toContain(hostVethName(live.id, 'eth0'));
    expect(node.ip(live.name, 'addr', 'show', 'eth0')).toContain('10.244.1.');
    for (const p of [live, other]) expect((await node.exec('DEL', node.conf(), { containerId: p.id, netns: p.netns })).code).toBe(0);
    for (const p of [victim, live, other]) node.dropPod(p.name);
  });

  it('a plugin killed inside the store lock (temp record written, not linked) wedges nothing; GC sweeps its temp file', async () => {
    const victim = node.pod();
    const k = killable();
    const running = node.exec('ADD', node.conf(), { containerId: victim.id, netns: victim.netns, extra: { TWILL_CNI_PAUSE_AT: 'ipam-temp' } }, k.opts);
    await k.paused();
    const temps = () => readdirSync(node.storeDir).filter((f) => f.startsWith(TMP_PREFIX));
    const owners = () => Object.entries(node.records()).filter(([f]) => !f.startsWith(TMP_PREFIX)).map(([, owner]) => owner);
    // Frozen inside the locked section: flock(1) cannot take the lock, the record is a temp file only.
    expect(tryLock(node.storeDir)).toBe(1);
    expect(temps()).toHaveLength(1);
    expect(readFileSync(join(node.storeDir, temps()[0]!), 'utf8')).toBe(`${victim.id}\r\neth0`);
    expect(owners()).not.toContain(`${victim.id}\r\neth0`);
    k.kill();
    const r = await running;
    expect(r.signal).toBe('SIGKILL');
    expect(r.stderr).toContain('TWILL_PAUSED ipam-temp');

    // The kernel dropped the dead holder's flock: the lock is free and the next ADD goes through at once.
    expect(tryLock(node.storeDir)).toBe(0);
    const other = node.pod();
    const t0 = Date.now();
    const add = await node.exec('ADD', node.conf(), { containerId: other.id, netns: other.netns }, { timeoutMs: 10_000 });
    expect(add.code, add.raw + add.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(temps()).toHaveLength(1);                 // ADD leaves it; GC sweeps it
    expect(owners()).toEqual([`${other.id}\r\neth0`]);
    const gc = await node.exec('GC', node.conf({ 'cni.dev/valid-attachments': [{ containerID: other.id, ifname: 'eth0' }] }), {});
    expect(gc.code, gc.raw).toBe(0);
    expect(temps()).toEqual([]);
    expect(Object.values(node.records())).toEqual([`${other.id}\r\neth0`]);
    expect(node.hostLinks()).not.toContain(hostVethName(victim.id, 'eth0'));
    expect((await node.exec('DEL', node.conf(), { containerId: other.id, netns: other.netns })).code).toBe(0);
    for (const p of [victim, other]) node.dropPod(p.name);
  });

  it('a killed ADD can also be cleaned up by the runtime\'s own DEL', async () => {
    const victim = node.pod();
    const k = killable();
    const running = node.exec('ADD', node.conf(), { containerId: victim.id, netns: victim.netns, extra: { TWILL_CNI_PAUSE_AT: 'veth' } }, k.opts);
    await k.killWhenPaused();
    await running;
    expect(Object.values(node.records())).toContain(`${victim.id}\r\neth0`);
    expect((await node.exec('DEL', node.conf(), { containerId: victim.id, netns: victim.netns })).code).toBe(0);
    expect(Object.values(node.records())).not.toContain(`${victim.id}\r\neth0`);
    expect(node.hostLinks()).not.toContain(hostVethName(victim.id, 'eth0'));
    node.dropPod(victim.name);
  });
});

/** Spawn hooks that SIGKILL the plugin as soon as it prints TWILL_PAUSED (TWILL_CNI_PAUSE_AT). */
function killable() {
  let pid = 0;
  let paused: () => void = () => undefined;
  const pausedP = new Promise<void>((r) => { paused = r; });
  const k = {
    opts: {
      onSpawn: (p: number) => { pid = p; },
      onStderr: (text: string) => { if (text.includes('TWILL_PAUSED')) paused(); },
    },
    /** Resolves once the plugin has printed its TWILL_PAUSED marker (it is then frozen). */
    async paused(): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([pausedP, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('plugin never paused')), 15_000); })]);
      clearTimeout(timer);
    },
    kill(): void {
      process.kill(pid, 'SIGKILL');
    },
    async killWhenPaused(): Promise<void> {
      await k.paused();
      k.kill();
    },
  };
  return k;
}

/** flock(1) -n on the store lock (what host-local takes): 0 = free (taken and dropped), 1 = held. */
function tryLock(storeDir: string): number | null {
  return spawnSync('flock', ['-n', join(storeDir, 'lock'), 'true']).status;
}
