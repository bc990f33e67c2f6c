// Many plugins at once and plugins that die: 200 ADDs at concurrency 20 through the executable
// give 200 distinct addresses (the flock-protected store), DEL of all leaves no record and no
// veth; a plugin SIGKILLed at any step of ADD leaves nothing that GC cannot reclaim, and never a
// wedged lock (flock dies with its holder).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../../util/root.js';
import { ensurePluginBuilt } from '../../util/pods.js';
import { hostVethName } from '../../../cni/link/names.js';
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
  return {
    opts: {
      onSpawn: (p: number) => { pid = p; },
      onStderr: (text: string) => { if (text.includes('TWILL_PAUSED')) paused(); },
    },
    async killWhenPaused(): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([pausedP, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('plugin never paused')), 15_000); })]);
      clearTimeout(timer);
      process.kill(pid, 'SIGKILL');
    },
  };
}
