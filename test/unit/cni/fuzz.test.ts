// Thousands of mutated invocations through the plugin's in-process entry (the code the binary
// runs): every answer must be a spec result or a spec error object, nothing may throw, and the
// IPAM store must stay exactly consistent with a model of the successful ADDs and DELs.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCni } from '../../../cni/plugin.js';
import { COMMANDS } from '../../../cni/cmd/index.js';
import { World, SUBNET_ENV } from './world.js';
import { seeded } from '../../util/rng.js';

const SEED = Number(process.env['TWILL_FUZZ_SEED'] ?? 0x7411);
const ROUNDS = Number(process.env['TWILL_FUZZ_ROUNDS'] ?? 3000);
const KNOWN_CODES = new Set([1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102, 999]);

const WEIRD: unknown[] = [null, true, false, 0, -1, 1.5, Number.POSITIVE_INFINITY, '', ' ', 'x'.repeat(5000), '../../etc', '/abs/../x', '\u0000',
  'ünïcødé', [], [1, 'a'], {}, { a: { b: { c: [] } } }, '0.4.0', '1.1.0', '9.9.9', 'cni0', 'eth0', '/tmp', 65536, 1400];

describe('CNI fuzz (in-process)', () => {
  let w: World;
  afterEach(() => w.cleanup());

  it(`survives ${ROUNDS} mutated invocations with a consistent store (seed ${SEED})`, async () => {
    w = new World();
    const rand = seeded(SEED);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
    const live = new Map<string, string>();       // "id/ifname" -> address (model)
    const nsPaths = ['/run/netns/f0', '/run/netns/f1', '/run/netns/f2', '/run/netns/f3', '/run/netns/missing'];
    for (const p of nsPaths.slice(0, 4)) w.addNetns(p);
    const garbledSubnet = join(w.dir, 'garbled.env');

    for (let i = 0; i < ROUNDS; i++) {
      const id = `c${Math.floor(rand() * 40)}`;
      const ifname = pick(['eth0', 'eth1', 'net1']);
      const command = rand() < 0.05 ? pick(['BOGUS', '', 'add', 'VERSION']) : pick(['ADD', 'ADD', 'ADD', 'DEL', 'DEL', 'CHECK', 'GC', 'STATUS']);
      const env: Record<string, string> = { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: ifname, CNI_NETNS: pick(nsPaths), CNI_PATH: '/opt/cni/bin' };
      if (rand() < 0.1) delete env[pick(Object.keys(env))];
      if (rand() < 0.1) env[pick(['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS'])] = String(pick(WEIRD));
      const conf: Record<string, unknown> = w.conf({ cniVersion: pick(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) });
      if (command === 'GC') conf['cni.dev/valid-attachments'] = [...live.keys()].map((k) => ({ containerID: k.split('/')[0], ifname: k.split('/')[1] }));
      if (command === 'CHECK') conf['prevResult'] = { cniVersion: '1.0.0', interfaces: [], ips: [{ address: `${live.get(`${id}/${ifname}`) ?? '10.244.1.9'}/24` }] };
      const mutations = rand() < 0.6 ? Math.floor(rand() * 4) : 0;
      for (let m = 0; m < mutations; m++) {
        const key = pick(['cniVersion', 'cniVersions', 'name', 'bridge', 'subnetFile', 'dataDir', 'mtu', 'hairpinMode', 'isDefaultGateway',
          'dns', 'prevResult', 'cni.dev/valid-attachments', 'ipam', 'runtimeConfig', 'args', 'type']);
        if (rand() < 0.3) delete conf[key]; else conf[key] = pick(WEIRD);
        // Never let the fuzz point the plugin at a real system path or at the bridge of the host.
        if (key === 'dataDir' || key === 'subnetFile') conf[key] = join(w.dir, 'x', String(i));
        if (key === 'name' && typeof conf[key] === 'string') conf[key] = 'cbr0';
      }
      if (rand() < 0.05) { writeFileSync(garbledSubnet, mangle(SUBNET_ENV, rand)); conf['subnetFile'] = garbledSubnet; }
      let stdin = JSON.stringify(conf);
      if (rand() < 0.05) stdin = mangle(stdin, rand);
      const sent = parsed(stdin);
      // A mangled key could fall back to the default data dir: keep the fuzz inside its tmp dir.
      if (sent && !(typeof sent['dataDir'] === 'string' && sent['dataDir'].startsWith(w.dir + '/'))) stdin = JSON.stringify(conf);
      const actual = parsed(stdin);

      let out;
      try {
        out = await runCni(env, stdin, async () => w.deps(), COMMANDS);
      } catch (err) {
        throw new Error(`round ${i} (seed ${SEED}) threw: ${String(err)}\nenv=${JSON.stringify(env)}\nstdin=${stdin.slice(0, 500)}`, { cause: err });
      }
      const ctx = `round ${i} (seed ${SEED}) env=${JSON.stringify(env)} stdin=${stdin.slice(0, 300)} out=${out.stdout.slice(0, 300)}`;
      if (out.code === 0) {
        const mainStore = actual?.['dataDir'] === w.dataDir && actual['name'] === 'cbr0';
        if (env['CNI_COMMAND'] === 'ADD') {
          const r = JSON.parse(out.stdout) as { ips: { address: string }[] };
          if (mainStore) live.set(`${env['CNI_CONTAINERID']}/${env['CNI_IFNAME']}`, r.ips[0]!.address.split('/')[0]!);
          // A pod leaves its netns as the runtime would before the next ADD on it.
          w.pods.get(env['CNI_NETNS']!)!.remove({ kind: 'link', name: env['CNI_IFNAME']! });
        } else if (env['CNI_COMMAND'] === 'DEL' && mainStore) {
          live.delete(`${env['CNI_CONTAINERID']}/${env['CNI_IFNAME']}`);
        } else if (env['CNI_COMMAND'] === 'VERSION' || env['CNI_COMMAND'] === 'STATUS' || env['CNI_COMMAND'] === 'CHECK' || env['CNI_COMMAND'] === 'GC' || env['CNI_COMMAND'] === 'DEL') {
          expect(out.stdout === '' || env['CNI_COMMAND'] === 'VERSION', ctx).toBe(true);
        }
      } else {
        expect(out.code, ctx).toBe(1);
        const e = JSON.parse(out.stdout) as { code: unknown; msg: unknown; cniVersion: unknown };
        expect(KNOWN_CODES.has(e.code as number), ctx).toBe(true);
        expect(typeof e.msg === 'string' && e.msg.length > 0, ctx).toBe(true);
        expect(typeof e.cniVersion, ctx).toBe('string');
        expect(e.code, ctx).not.toBe(999);   // every failure the fuzz can provoke has a specific code
      }
      assertStore(w, live, ctx);
    }
    expect(live.size).toBeGreaterThan(0);
    // 3000 rounds take ≈17 s on these 2 cores beside the other unit files, close to the project's
    // 20 s default; a correctness test, so it gets room instead of racing the clock.
  }, 120_000);
});

function parsed(s: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(s) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function mangle(s: string, rand: () => number): string {
  const ops = Math.ceil(rand() * 3);
  let out = s;
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(rand() * Math.max(1, out.length));
    const r = rand();
    if (r < 0.33) out = out.slice(0, at);
    else if (r < 0.66) out = out.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + out.slice(at + 1);
    else out = out.slice(0, at) + out.slice(at, at + 20) + out.slice(at);
  }
  return out;
}

/** The store holds exactly the model's records, each well-formed; nothing else but lock/last_reserved. */
function assertStore(w: World, live: Map<string, string>, ctx: string): void {
  const dir = join(w.dataDir, 'cbr0');
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const recs = new Map<string, string>();
  for (const f of files) {
    if (f === 'lock' || f === 'last_reserved_ip.0') continue;
    expect(/^10\.244\.1\.\d{1,3}$/.test(f), `${ctx}: unexpected file ${f}`).toBe(true);
    const content = readFileSync(join(dir, f), 'utf8');
    expect(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*\r\n[^\s/:]{1,15}$/.test(content), `${ctx}: record ${f} = ${JSON.stringify(content)}`).toBe(true);
    const key = content.replace('\r\n', '/');
    expect(recs.has(key), `${ctx}: two records for ${key}`).toBe(false);
    recs.set(key, f);
  }
  expect(Object.fromEntries(recs), ctx).toEqual(Object.fromEntries([...live].map(([k, ip]) => [k, ip])));
}
