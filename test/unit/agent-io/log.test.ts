// The logger redacts secrets wherever they sit in a logged object, and nothing else: an etcd
// key (a lease's) must stay readable in the warning about that lease.
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { createLogger } from '../../../lib/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } });
  return { lines, log: createLogger('info', 'twill', dest) };
}

it('redacts passwords, tokens and private keys at any depth', () => {
  const { lines, log } = capture();
  log.info({ password: 'p1', options: { etcdPassword: 'p2', token: 't', privateKey: 'k' }, authorization: 'Bearer x' }, 'm');
  const text = JSON.stringify(lines);
  for (const secret of ['p1', 'p2', '"t"', '"k"', 'Bearer x']) expect(text).not.toContain(secret);
  expect(lines[0]).toMatchObject({ password: '[redacted]', options: { etcdPassword: '[redacted]', token: '[redacted]', privateKey: '[redacted]' } });
});

it('keeps a lease key readable', () => {
  const { lines, log } = capture();
  log.warn({ key: '/twill.io/network/subnets/10.244.5.0-24', reason: 'public-ip' }, 'ignoring peer lease');
  expect(lines[0]).toMatchObject({ key: '/twill.io/network/subnets/10.244.5.0-24', reason: 'public-ip' });
});
