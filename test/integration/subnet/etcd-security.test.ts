// EtcdSubnetManager against etcd with TLS client certificates, and with password auth
// (the password must never reach a log line). Real etcd on loopback, certificates from openssl.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { EtcdSubnetManager, type EtcdSubnetManagerOptions } from '../../../lib/subnet/etcd.js';
import { isTwillError, type TwillError } from '../../../lib/errors.js';
import { startEtcd, type EtcdHandle } from '../../util/etcd.js';

const attrs = { publicIP: '192.0.2.10', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:58:00:00:00:01' }, backendV6Data: null };
const sig = () => new AbortController().signal;
const PASSWORD = 'pw-Zq81-never-logged';
const CONF = JSON.stringify({ Network: '10.244.0.0/16' });

let dir: string;
const managers: EtcdSubnetManager[] = [];
function manager(o: EtcdSubnetManagerOptions): EtcdSubnetManager {
  const m = new EtcdSubnetManager({ requestTimeoutMs: 3000, ...o });
  managers.push(m);
  return m;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCerts(): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=twill-test-ca']);
  // 'serveronly' lacks clientAuth: etcd's JSON gateway (which twill used before gRPC) presented
  // the server certificate as a client certificate and failed with it (etcd-io/etcd#16590).
  const certs = [['server', 'serverAuth,clientAuth', 'IP:127.0.0.1'], ['serveronly', 'serverAuth', 'IP:127.0.0.1'], ['client', 'clientAuth', 'DNS:twill']] as const;
  for (const [name, usage, san] of certs) {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\n`);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`]);
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'twill-etcd-tls-'));
  makeCerts();
});
afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('EtcdSubnetManager over TLS with client certificates', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd({ tls: {
      certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), trustedCaFile: join(dir, 'ca.crt'),
      clientCertFile: join(dir, 'client.crt'), clientKeyFile: join(dir, 'client.key'),
    } });
    await etcd.ctl(['put', '/twill.io/network/config', CONF]);
  });
  afterAll(async () => { await etcd?.stop(); });

  it('acquires a lease with CA + client certificate', async () => {
    expect(etcd.endpoint).toMatch(/^https:/);
    const m = manager({ endpoints: [etcd.endpoint], caFile: join(dir, 'ca.crt'), certFile: join(dir, 'client.crt'), keyFile: join(dir, 'client.key') });
    const l = await m.acquireLease(attrs, { signal: sig() });
    expect(l.subnet).toMatch(/^10\.244\./);
    expect(await etcd.ctl(['get', l.key, '--print-value-only'])).toContain('192.0.2.10');
  });

  it('fails without a client certificate (ETCD error naming the endpoint)', async () => {
    const m = manager({ endpoints: [etcd.endpoint], caFile: join(dir, 'ca.crt') });
    await expect(m.getNetworkConfig(sig())).rejects.toSatisfy((e: TwillError) => isTwillError(e, 'ETCD') && e.message.includes(etcd.endpoint));
  });

  it('rejects incomplete or unreadable TLS options as CONFIG_INVALID', () => {
    expect(() => manager({ endpoints: [etcd.endpoint], certFile: join(dir, 'client.crt'), keyFile: join(dir, 'client.key') })).toThrow(/--etcd-cafile is required/);
    expect(() => manager({ endpoints: [etcd.endpoint], caFile: join(dir, 'ca.crt'), certFile: join(dir, 'client.crt') })).toThrow(/must be given together/);
    let err: unknown;
    try { manager({ endpoints: [etcd.endpoint], caFile: join(dir, 'missing.crt') }); } catch (e) { err = e; }
    expect(isTwillError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain('missing.crt');
  });
});

describe('EtcdSubnetManager against etcd whose server certificate lacks clientAuth', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd({ tls: {
      certFile: join(dir, 'serveronly.crt'), keyFile: join(dir, 'serveronly.key'), trustedCaFile: join(dir, 'ca.crt'),
      clientCertFile: join(dir, 'client.crt'), clientKeyFile: join(dir, 'client.key'),
    } });
    await etcd.ctl(['put', '/twill.io/network/config', CONF]);
  });
  afterAll(async () => { await etcd?.stop(); });

  it('works: gRPC reaches etcd directly, the server certificate is never used as a client one', async () => {
    const m = manager({ endpoints: [etcd.endpoint], caFile: join(dir, 'ca.crt'), certFile: join(dir, 'client.crt'), keyFile: join(dir, 'client.key') });
    const l = await m.acquireLease(attrs, { signal: sig() });
    expect(l.subnet).toMatch(/^10\.244\./);
  });
});

describe('EtcdSubnetManager with password auth', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd();
    await etcd.ctl(['put', '/twill.io/network/config', CONF]);
    await etcd.ctl(['user', 'add', 'root', `--new-user-password=${PASSWORD}`, '--interactive=false']);
    await etcd.ctl(['auth', 'enable']);
  });
  afterAll(async () => { await etcd?.stop(); });

  it('works with the right password, fails with a wrong one, and never logs it', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (s: string) => { lines.push(s); } });
    const m = manager({ endpoints: [etcd.endpoint], username: 'root', password: PASSWORD, logger });
    const l = await m.acquireLease(attrs, { signal: sig() });
    expect(l.subnet).toMatch(/^10\.244\./);
    await m.renewLease(l, sig());
    const bad = manager({ endpoints: [etcd.endpoint], username: 'root', password: 'wrong', logger });
    await expect(bad.getNetworkConfig(sig())).rejects.toSatisfy((e: TwillError) => isTwillError(e, 'ETCD') && !e.message.includes(PASSWORD));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(PASSWORD);
  });
});
