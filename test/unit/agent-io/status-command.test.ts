// `twilld status` end to end against a real agent HTTP server on 127.0.0.1 (port 0).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../../agent/http.js';
import { Metrics } from '../../../agent/metrics.js';
import { runStatusCommand, statusUrl, type StatusIO } from '../../../agent/status.js';
import { silentLogger } from '../../../lib/log.js';
import { NOW, sampleStatus } from './fixture.js';

let server: HttpServer | undefined;
afterEach(async () => { await server?.close(); server = undefined; });

async function startAgent(): Promise<number> {
  server = await startHttpServer({ host: '127.0.0.1', port: 0, getStatus: sampleStatus, metrics: new Metrics({ defaultMetrics: false }), logger: silentLogger() });
  return server.port;
}

function capture(isTTY = false) {
  const out = { stdout: '', stderr: '' };
  const io: StatusIO = { stdout: (s) => { out.stdout += s; }, stderr: (s) => { out.stderr += s; }, isTTY, fetch: globalThis.fetch, now: () => NOW };
  return { io, out };
}

/** A port nothing listens on: bind, note it, close. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('twilld status', () => {
  it('fetches /status and renders it (no colour when not a TTY)', async () => {
    const port = await startAgent();
    const { io, out } = capture(false);
    expect(await runStatusCommand(['--healthz-port', String(port)], {}, io)).toBe(0);
    expect(out.stderr).toBe('');
    expect(out.stdout).toContain('Lease:           alive\n  subnet         10.244.1.0/24\n');
    expect(out.stdout).toContain('  10.244.2.0/24   192.0.2.11  0a:58:0a:f4:02:00  programmed\n');
    expect(out.stdout).not.toContain('\x1b[');
  });

  it('colours on a TTY unless NO_COLOR or --no-color', async () => {
    const port = await startAgent();
    const tty = capture(true);
    await runStatusCommand([`--healthz-port=${port}`], {}, tty.io);
    expect(tty.out.stdout).toContain('\x1b[32mprogrammed\x1b[0m');
    const noColor = capture(true);
    await runStatusCommand([`--healthz-port=${port}`], { NO_COLOR: '1' }, noColor.io);
    expect(noColor.out.stdout).not.toContain('\x1b[');
    const flag = capture(true);
    await runStatusCommand([`--healthz-port=${port}`, '--no-color'], {}, flag.io);
    expect(flag.out.stdout).not.toContain('\x1b[');
  });

  it('--json prints the raw status; TWILLD_HEALTHZ_* env is honoured', async () => {
    const port = await startAgent();
    const { io, out } = capture();
    expect(await runStatusCommand(['--json'], { TWILLD_HEALTHZ_IP: '127.0.0.1', TWILLD_HEALTHZ_PORT: String(port) }, io)).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual(JSON.parse(JSON.stringify(sampleStatus())));
  });

  it('says clearly when the agent is not reachable', async () => {
    const port = await closedPort();
    const { io, out } = capture();
    expect(await runStatusCommand(['--healthz-ip', '127.0.0.1', '--healthz-port', String(port)], {}, io)).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain(`cannot reach the agent at http://127.0.0.1:${port}/status (ECONNREFUSED)`);
    expect(out.stderr).toContain('Is twilld running');
  });

  it('rejects something that is not an agent status', async () => {
    const s = createServer((_req, res) => res.end('<html>hello</html>'));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const { io, out } = capture();
      expect(await runStatusCommand(['--healthz-port', String((s.address() as AddressInfo).port)], {}, io)).toBe(1);
      expect(out.stderr).toMatch(/did not return an agent status/);
    } finally {
      s.close();
    }
  });

  it.each([
    [['--healthz-port', 'abc'], /--healthz-port: "abc" is invalid: must be a port number/],
    [['--healthz-port', '0'], /health server is disabled/],
    [['--healthz-ip'], /--healthz-ip: needs a value/],
    [['--bogus'], /unknown argument: "--bogus"/],
  ])('usage error %j', async (argv, msg) => {
    const { io, out } = capture();
    expect(await runStatusCommand(argv, {}, io)).toBe(2);
    expect(out.stderr).toMatch(msg);
    expect(out.stderr).toContain('usage: twilld status');
  });

  it('builds the URL for IPv4, IPv6 and wildcard addresses', () => {
    expect(statusUrl('127.0.0.1', 8471)).toBe('http://127.0.0.1:8471/status');
    expect(statusUrl('0.0.0.0', 8471)).toBe('http://127.0.0.1:8471/status');
    expect(statusUrl('::', 8471)).toBe('http://[::1]:8471/status');
    expect(statusUrl('fd00::1', '9000')).toBe('http://[fd00::1]:9000/status');
  });
});
