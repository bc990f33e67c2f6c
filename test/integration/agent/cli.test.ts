// The agent as a process: `twilld --cleanup` removes everything twill installed and nothing else,
// and secrets given as flags never reach a log line.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeRoot, uniquePrefix } from '../../util/root.js';

const TWILLD = resolve(import.meta.dirname, '../../../bin/twilld.js');
const built = existsSync(resolve(import.meta.dirname, '../../../dist/agent/main.js'));

describe('twilld process', () => {
  it.skipIf(!built)('never logs secrets given as flags', async () => {
    const child = spawn(process.execPath, [TWILLD, '--etcd-password', 's3cr3t-pw', '--etcd-keyfile', '/k/secret.key',
      '--etcd-endpoints', 'http://127.0.0.1:1', '--iface', 'no-such-if0', '--healthz-port', '0', '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.stderr.on('data', (d: Buffer) => { out += d; });
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(out).toContain('twilld starting');
    expect(out).toContain('[redacted]');
    expect(out).not.toContain('s3cr3t-pw');
    expect(out).not.toContain('/k/secret.key');
  });

  it.skipIf(!built)('rejects an unknown flag with a message naming it', () => {
    let err = '';
    try { execFileSync(process.execPath, [TWILLD, '--no-such-flag'], { stdio: 'pipe' }); } catch (e) { err = String((e as { stderr: Buffer }).stderr); }
    expect(err).toMatch(/flag: "--no-such-flag" is invalid: unknown flag/);
  });
});

describeRoot('twilld --cleanup', () => {
  let ns = '';
  let dir = '';
  const ip = (...a: string[]) => execFileSync('ip', ['-n', ns, ...a], { encoding: 'utf8' });
  const nft = (...a: string[]) => execFileSync('ip', ['netns', 'exec', ns, 'nft', ...a], { encoding: 'utf8' });
  beforeEach(() => {
    ns = `${uniquePrefix()}cl`;
    dir = mkdtempSync(join(tmpdir(), 'twill-cleanup-'));
    execFileSync('ip', ['netns', 'add', ns]);
    ip('link', 'set', 'lo', 'up');
    ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1');
    ip('addr', 'add', '10.98.0.1/24', 'dev', 'eth0');
    ip('link', 'set', 'eth0', 'up'); ip('link', 'set', 'eth1', 'up');
  });
  afterEach(() => {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!built)('removes the device, its entries, proto-116 routes, the nft table and subnet.env; leaves the rest', () => {
    ip('link', 'add', 'twill.1', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning', 'local', '10.98.0.1');
    ip('link', 'set', 'twill.1', 'up');
    ip('nexthop', 'add', 'id', '7', 'via', '10.244.7.0', 'dev', 'twill.1', 'onlink', 'proto', '116');
    ip('route', 'add', '10.244.7.0/24', 'nhid', '7', 'proto', '116');
    ip('route', 'add', '10.244.8.0/24', 'via', '10.98.0.2', 'dev', 'eth0', 'proto', '116');   // DirectRouting-style, other device
    ip('route', 'add', '192.0.2.0/24', 'via', '10.98.0.2', 'dev', 'eth0', 'proto', 'static'); // foreign
    nft('add', 'table', 'inet', 'twill');
    nft('add', 'table', 'inet', 'foreign');
    const env = join(dir, 'subnet.env');
    writeFileSync(env, 'FLANNEL_SUBNET=10.244.1.1/24\n');
    execFileSync('ip', ['netns', 'exec', ns, process.execPath, TWILLD, '--cleanup', '--subnet-file', env, '--log-level', 'warn']);
    expect(ip('link', 'show')).not.toContain('twill.1');
    expect(ip('route', 'show', 'proto', '116')).toBe('');
    expect(ip('nexthop', 'show')).toBe('');
    expect(ip('route', 'show')).toContain('192.0.2.0/24');
    const tables = nft('list', 'tables');
    expect(tables).not.toContain('inet twill');
    expect(tables).toContain('inet foreign');
    expect(existsSync(env)).toBe(false);
  });
});
