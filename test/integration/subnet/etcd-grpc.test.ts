// The gRPC client (lib/subnet/etcd-grpc.ts) against real etcd on loopback: failover across
// endpoints, deadlines against a server that never answers, etcd errors as answers, the watch
// stream, keepalive, auth tokens that expire, and the paged list's revision pin. No root needed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { EtcdGrpc, type RangeRequest, type WatchResponse } from '../../../lib/subnet/etcd-grpc.js';
import { listPrefix } from '../../../lib/subnet/etcd-client.js';
import { startEtcd, type EtcdHandle } from '../../util/etcd.js';

const B = (s: string) => Buffer.from(s);
let etcd: EtcdHandle;
const clients: EtcdGrpc[] = [];
const client = (endpoints: string[], timeoutMs = 3000, auth?: { username: string; password: string }) => {
  const c = new EtcdGrpc({ endpoints, timeoutMs, auth });
  clients.push(c);
  return c;
};

/** A loopback TCP server that accepts connections and never says a word (a hung etcd). */
let silent: Server;
const held: Socket[] = [];
let silentUrl: string;
/** A loopback port nobody listens on. */
let closedUrl: string;

beforeAll(async () => {
  etcd = await startEtcd();
  silent = createServer((s) => { held.push(s); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(probe.address() as { port: number }).port}`;
  await new Promise((r) => probe.close(r));
});
afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of held) s.destroy();
  await new Promise((r) => silent?.close(r));
  await etcd?.stop();
});

describe('EtcdGrpc', () => {
  it('fails over from a refused endpoint and from one that never answers, and remembers the one that did', async () => {
    const c = client([closedUrl, silentUrl, etcd.endpoint], 400);
    await etcd.ctl(['put', '/g/a', '1']);
    const t = Date.now();
    const r = await c.range({ key: B('/g/a') });
    expect(r.kvs.map((kv) => kv.value.toString())).toEqual(['1']);
    expect(Date.now() - t).toBeGreaterThanOrEqual(350);   // waited out the silent one
    expect(c.endpoint).toBe(new URL(etcd.endpoint).href);
    const t2 = Date.now();
    await c.range({ key: B('/g/a') });
    expect(Date.now() - t2).toBeLessThan(300);             // starts from the endpoint that answered
  });

  it('a call to endpoints that never answer fails at its deadline, naming the endpoint', async () => {
    const c = client([silentUrl], 300);
    await expect(c.range({ key: B('/g/a') })).rejects.toThrow(/127\.0\.0\.1:\d+: no answer within 300 ms/);
    const d = client([closedUrl], 300);
    await expect(d.range({ key: B('/g/a') })).rejects.toThrow(/ECONNREFUSED|connect/);
  });

  it("etcd's own errors are answers: no failover, etcd's message", async () => {
    const c = client([etcd.endpoint, closedUrl]);
    await expect(c.leaseRevoke('12345')).rejects.toThrow(/requested lease not found/);
    expect(c.endpoint).toBe(new URL(etcd.endpoint).href);
    expect(await c.leaseTimeToLive('12345')).toBe(-1);
  });

  it('txn, leases and keepalive', async () => {
    const c = client([etcd.endpoint]);
    const g = await c.leaseGrant(30);
    expect(g.TTL).toBe('30');
    const put = await c.txn({
      compare: [{ key: B('/g/txn'), target: 'CREATE', result: 'EQUAL', create_revision: 0 }],
      success: [{ request_put: { key: B('/g/txn'), value: B('v'), lease: g.ID } }], failure: [],
    });
    expect(put.succeeded).toBe(true);
    const again = await c.txn({
      compare: [{ key: B('/g/txn'), target: 'CREATE', result: 'EQUAL', create_revision: 0 }],
      success: [{ request_put: { key: B('/g/txn'), value: B('w') } }], failure: [],
    });
    expect(again.succeeded).toBe(false);
    const r = await c.range({ key: B('/g/txn') });
    expect(r.kvs[0]!.lease).toBe(g.ID);
    expect(await c.leaseKeepAliveOnce(g.ID)).toBe(30);
    await c.leaseRevoke(g.ID);
    expect(await c.leaseKeepAliveOnce(g.ID)).toBeLessThanOrEqual(0);
    expect((await c.range({ key: B('/g/txn') })).kvs).toEqual([]);
  });

  it('watch: created, events in order with prev_kv, cancel stops delivery; a compacted start is cancelled by etcd', async () => {
    const c = client([etcd.endpoint]);
    const start = BigInt((await c.range({ key: B('/w/') })).revision) + 1n;
    const got: WatchResponse[] = [];
    const ends: Error[] = [];
    const w = await c.watch({ key: B('/w/'), range_end: B('/w0'), start_revision: start.toString(), prev_kv: true }, (r) => got.push(r), (e) => ends.push(e));
    await etcd.ctl(['put', '/w/a', '1']);
    await etcd.ctl(['put', '/w/a', '2']);
    await etcd.ctl(['del', '/w/a']);
    const until = Date.now() + 5000;
    while (got.flatMap((r) => r.events).length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(got[0]!.created).toBe(true);
    expect(got.flatMap((r) => r.events).map((e) => [e.type, e.kv.key.toString(), e.kv.value.toString(), e.prev_kv?.value.toString()]))
      .toEqual([['PUT', '/w/a', '1', undefined], ['PUT', '/w/a', '2', '1'], ['DELETE', '/w/a', '', '2']]);
    w.cancel();
    await etcd.ctl(['put', '/w/b', '1']);
    await new Promise((r) => setTimeout(r, 200));
    expect(got.flatMap((r) => r.events)).toHaveLength(3);
    expect(ends).toEqual([]);   // cancel() is not an end

    const rev = BigInt((await c.range({ key: B('/w/') })).revision);
    await etcd.ctl(['compact', String(rev)]);
    const late: WatchResponse[] = [];
    const w2 = await c.watch({ key: B('/w/'), range_end: B('/w0'), start_revision: String(rev - 2n), prev_kv: false }, (r) => late.push(r), () => undefined);
    while (!late.some((r) => r.canceled) && Date.now() < until + 5000) await new Promise((r) => setTimeout(r, 20));
    expect(late.find((r) => r.canceled)?.compact_revision).toBe(String(rev));
    w2.cancel();
  });
});

describe('listPrefix (paged)', () => {
  it('its pages form one view at the first page\'s revision, even when keys change between pages', async () => {
    const real = client([etcd.endpoint]);
    const keys = Array.from({ length: 7 }, (_, i) => `/lp/k${i}`);
    for (const k of keys) await etcd.ctl(['put', k, `v-${k}`]);
    // After the first page is answered, and before the next is asked for: a new key, a changed
    // one and a deleted one, committed. Only the revision pin keeps them out of the listing.
    let calls = 0;
    const racing = {
      range: async (r: RangeRequest) => {
        const res = await real.range(r);
        if (++calls === 1) {
          await etcd.ctl(['put', '/lp/k3a', 'new']);
          await etcd.ctl(['put', '/lp/k5', 'changed']);
          await etcd.ctl(['del', '/lp/k6']);
        }
        return res;
      },
    } as unknown as EtcdGrpc;
    const out = await listPrefix(racing, '/lp/', 3);
    expect(calls).toBe(3);
    expect(out.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`)).toEqual(keys.map((k) => `${k}=v-${k}`));
    const later = await listPrefix(real, '/lp/', 3);
    expect(later.revision).toBeGreaterThan(out.revision);
    expect(later.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`)).toEqual([
      '/lp/k0=v-/lp/k0', '/lp/k1=v-/lp/k1', '/lp/k2=v-/lp/k2', '/lp/k3=v-/lp/k3', '/lp/k3a=new', '/lp/k4=v-/lp/k4', '/lp/k5=changed',
    ]);
  });
});

describe('EtcdGrpc with password auth and short-lived tokens', () => {
  let authd: EtcdHandle;
  beforeAll(async () => {
    authd = await startEtcd({ extraArgs: ['--auth-token=simple', '--auth-token-ttl=1'] });
    await authd.ctl(['user', 'add', 'root', '--new-user-password=pw', '--interactive=false']);
    await authd.ctl(['auth', 'enable']);
  });
  afterAll(async () => { await authd?.stop(); });

  it('authenticates, and renews a token etcd has expired', async () => {
    const c = client([authd.endpoint], 3000, { username: 'root', password: 'pw' });
    await c.txn({ compare: [], success: [{ request_put: { key: B('/a/k'), value: B('1') } }], failure: [] });
    await new Promise((r) => setTimeout(r, 2500));   // the simple token's TTL is 1 s
    expect((await c.range({ key: B('/a/k') })).kvs[0]!.value.toString()).toBe('1');
    await expect(client([authd.endpoint], 3000, { username: 'root', password: 'nope' }).range({ key: B('/a/k') }))
      .rejects.toThrow(/authentication failed/);
  });
});
