// KubeNodeClient's own HTTP handling (lib/subnet/kube-client.ts) against a scripted server:
// bearer token from a token file, errors carrying status and Status body, cancellation, and a
// list streamed in small pieces. Everything else runs against the fake API server (acquire,
// watch) and the real kube-apiserver (test/e2e/kube-*).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeNodeClient, httpStatus, kubeErrorMessage } from '../../../lib/subnet/kube-client.js';
import { isTwillError } from '../../../lib/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const cleanups: (() => void)[] = [];
afterEach(() => { for (const c of cleanups.splice(0)) c(); });

async function serve(h: Handler): Promise<string> {
  const srv = createServer(h);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => { srv.closeAllConnections(); srv.close(); });
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

const never = () => new AbortController().signal;

describe('KubeNodeClient', () => {
  it('sends the token file\'s token as a bearer token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twill-kc-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'token'), 'tok-1\n');
    const seen: (string | undefined)[] = [];
    const server = await serve((req, res) => { seen.push(req.headers.authorization); res.end(JSON.stringify({ metadata: { name: 'n1' } })); });
    const c = new KubeNodeClient({ server, skipTLSVerify: true, tokenFile: join(dir, 'token') });
    cleanups.push(() => c.close());
    expect((await c.getNode('n1', never())).metadata?.name).toBe('n1');
    expect(seen).toEqual(['Bearer tok-1']);
  });

  it('a failed call carries the HTTP status and the Status body', async () => {
    const server = await serve((req, res) => {
      res.statusCode = req.method === 'PATCH' ? 409 : 404;
      res.end(JSON.stringify({ kind: 'Status', reason: res.statusCode === 409 ? 'Conflict' : 'NotFound', message: `${req.method} ${req.url} ${req.headers['content-type'] ?? ''}` }));
    });
    const c = new KubeNodeClient({ server, skipTLSVerify: true });
    cleanups.push(() => c.close());
    const get = await c.getNode('gone', never()).catch((e: unknown) => e);
    expect(httpStatus(get)).toBe(404);
    expect(kubeErrorMessage(get)).toBe('404 NotFound: GET /api/v1/nodes/gone');
    const patch = await c.patchNodeStatus('n', { metadata: {} }, 'strategic', never()).catch((e: unknown) => e);
    expect(kubeErrorMessage(patch)).toBe('409 Conflict: PATCH /api/v1/nodes/n/status application/strategic-merge-patch+json');
  });

  it('an abort ends a hanging call with ABORTED', async () => {
    const server = await serve(() => { /* never answers */ });
    const c = new KubeNodeClient({ server, skipTLSVerify: true });
    cleanups.push(() => c.close());
    const ctl = new AbortController();
    const p = c.getNode('n', ctl.signal).catch((e: unknown) => e);
    setTimeout(() => ctl.abort(), 50);
    expect(isTwillError(await p, 'ABORTED')).toBe(true);
  });

  it('lists Nodes streamed in small pieces, keeping only what leases are made of', async () => {
    const items = Array.from({ length: 50 }, (_, i) => ({
      metadata: { name: `n${i}`, resourceVersion: String(i), annotations: { 'twill.io/public-ip': `192.0.2.${i}` }, managedFields: [{ manager: 'kubelet' }] },
      spec: { podCIDR: `10.0.${i}.0/24`, podCIDRs: [`10.0.${i}.0/24`] },
      status: { addresses: [{ type: 'InternalIP', address: `192.0.2.${i}` }] },
    }));
    const text = JSON.stringify({ kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '777' }, items });
    const server = await serve((_req, res) => {
      let at = 0;
      const step = () => { if (at >= text.length) { res.end(); return; } res.write(text.slice(at, at += 97)); setImmediate(step); };
      step();
    });
    const c = new KubeNodeClient({ server, skipTLSVerify: true });
    cleanups.push(() => c.close());
    const list = await c.listNodes(never());
    expect(list.resourceVersion).toBe('777');
    expect(list.items).toEqual(items.map((n) => ({ metadata: { name: n.metadata.name, resourceVersion: n.metadata.resourceVersion, annotations: n.metadata.annotations }, spec: n.spec })));
  });
});
