// Real HTTP requests against startHttpServer on 127.0.0.1, port 0, with a fake status.
import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer, type HttpServerOptions } from '../../../agent/http.js';
import { Metrics } from '../../../agent/metrics.js';
import type { AgentStatus } from '../../../agent/state.js';
import { silentLogger } from '../../../lib/log.js';
import { notReadyStatus, sampleStatus } from './fixture.js';

let server: HttpServer | undefined;
afterEach(async () => { await server?.close(); server = undefined; });

async function start(getStatus: () => AgentStatus, isAlive?: () => boolean, metrics = new Metrics({ defaultMetrics: true }), extra: Partial<HttpServerOptions> = {}) {
  server = await startHttpServer({ host: '127.0.0.1', port: 0, getStatus, metrics, logger: silentLogger(), isAlive, ...extra });
  return `http://127.0.0.1:${server.port}`;
}

describe('agent HTTP server', () => {
  it('listens on a real port when asked for port 0', async () => {
    await start(sampleStatus);
    expect(server?.port).toBeGreaterThan(0);
  });

  it('/healthz follows isAlive()', async () => {
    let alive = true;
    const base = await start(sampleStatus, () => alive);
    let res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
    alive = false;
    res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/stalled/);
  });

  it('/readyz is 200 when ready and 503 with one reason per line when not', async () => {
    let status = sampleStatus();
    const base = await start(() => status);
    let res = await fetch(`${base}/readyz`);
    expect([res.status, await res.text()]).toEqual([200, 'ok\n']);
    status = notReadyStatus();
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect((await res.text()).split('\n')).toEqual([...status.notReadyReasons, '']);
  });

  it('/readyz uses getReadiness() when given, without building the status', async () => {
    let built = 0;
    const base = await start(() => { built++; return sampleStatus(); }, undefined, undefined, {
      getReadiness: () => ({ ready: false, notReadyReasons: ['lease store unreachable'] }),
    });
    const res = await fetch(`${base}/readyz`);
    expect([res.status, await res.text()]).toEqual([503, 'lease store unreachable\n']);
    expect(built).toBe(0);
  });

  it('/metrics leaves the status gauges to the daemon unless asked to sync', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.setPeers({ valid: 7, invalid: 0, programmed: 6 });
    let built = 0;
    const base = await start(() => { built++; return sampleStatus(); }, undefined, metrics);
    const body = await (await fetch(`${base}/metrics`)).text();
    expect(body).toContain('twill_peers{state="valid"} 7');
    expect(built).toBe(0);
  });

  it('/status returns the AgentStatus as JSON', async () => {
    const base = await start(sampleStatus);
    const res = await fetch(`${base}/status`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(sampleStatus())));
  });

  it('/metrics serves prometheus text with twill and process metrics, gauges synced from status', async () => {
    const metrics = new Metrics();
    metrics.repair('route');
    const base = await start(sampleStatus, undefined, metrics, { syncMetricsFromStatus: true });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(body).toContain('twill_peers{state="valid"} 3');
    expect(body).toContain('twill_peers{state="invalid"} 1');
    expect(body).toContain('twill_peers{state="programmed"} 2');
    expect(body).toContain('twill_ready 1');
    expect(body).toContain('twill_kernel_repairs_total{kind="route"} 1');
    expect(body).toContain(`twill_lease_expiry_timestamp_seconds ${sampleStatus().lease.expiration! / 1000}`);
    expect(body).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(body).toMatch(/^nodejs_heap_size_total_bytes \d/m);
  });

  it('answers 404 for unknown paths, 405 for other methods, HEAD without a body', async () => {
    const base = await start(sampleStatus);
    const nf = await fetch(`${base}/nope`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toMatch(/\/healthz/);
    const post = await fetch(`${base}/status`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('turns a throwing status getter into a 500 with the message', async () => {
    const base = await start(() => { throw new Error('state not initialised'); });
    const res = await fetch(`${base}/status`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('internal error: state not initialised\n');
  });

  it('close() returns promptly with an idle keep-alive connection open, and frees the port', async () => {
    const base = await start(sampleStatus);
    const port = server!.port;
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      const req = request(`${base}/healthz`, { agent }, (res) => { res.resume(); res.on('end', resolve); });
      req.on('error', reject);
      req.end();
    });
    await server!.close();
    server = undefined;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    agent.destroy();
  });

  it('reports a clear error when the port is taken', async () => {
    await start(sampleStatus);
    await expect(startHttpServer({ host: '127.0.0.1', port: server!.port, getStatus: sampleStatus, metrics: new Metrics({ defaultMetrics: false }), logger: silentLogger() }))
      .rejects.toThrow(/health server: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});

