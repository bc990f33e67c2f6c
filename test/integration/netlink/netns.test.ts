import { statSync } from 'node:fs';
import { expect, it } from 'vitest';
import { isTwillError } from '../../../lib/errors.js';
import { closeFd, openNetnsFd, readSysctl, withNetnsSync, writeSysctl } from '../../../lib/netlink/netns.js';
import { describeRoot } from '../../util/root.js';
import { netnsFixture, sh } from './netns-fixture.js';

const nsId = (path: string) => statSync(path).ino; // the nsfs inode names the namespace

describeRoot('netns helpers', () => {
  const fx = netnsFixture('tnn');

  it('withNetnsSync runs fn inside the netns and always switches back', () => {
    const self = nsId('/proc/thread-self/ns/net');
    const ns = fx.make();
    const inside = withNetnsSync(ns.path, () => nsId('/proc/thread-self/ns/net'));
    expect(inside).toBe(nsId(ns.path));
    expect(inside).not.toBe(self);
    expect(nsId('/proc/thread-self/ns/net')).toBe(self);
    expect(() => withNetnsSync(ns.path, () => { throw new Error('boom'); })).toThrow('boom');
    expect(nsId('/proc/thread-self/ns/net')).toBe(self);
  });

  it('openNetnsFd opens a namespace fd (and fails clearly for a missing one)', () => {
    const ns = fx.make();
    const fd = openNetnsFd(ns.path);
    expect(fd).toBeGreaterThan(2);
    expect(statSync(`/proc/self/fd/${fd}`).ino).toBe(nsId(ns.path));
    closeFd(fd);
    let caught: unknown;
    try { openNetnsFd('/var/run/netns/twill-missing-ns'); } catch (err) { caught = err; }
    expect(isTwillError(caught, 'NETNS')).toBe(true);
    expect((caught as Error).message).toMatch(/twill-missing-ns: ENOENT/);
  });

  it('writeSysctl/readSysctl act on the target netns only', () => {
    const a = fx.make();
    const b = fx.make();
    const path = '/proc/sys/net/ipv4/ip_forward';
    const host = readSysctl(path);
    writeSysctl(path, '1', a.path);
    expect(readSysctl(path, a.path)).toBe('1');
    expect(sh('ip', 'netns', 'exec', a.name, 'cat', path).trim()).toBe('1');
    expect(readSysctl(path, b.path)).toBe('0');
    expect(readSysctl(path)).toBe(host);
    // a per-interface knob
    sh('ip', '-n', a.name, 'link', 'add', 'br-x', 'type', 'bridge');
    writeSysctl('/proc/sys/net/ipv6/conf/br-x/disable_ipv6', '1', a.path);
    expect(sh('ip', 'netns', 'exec', a.name, 'cat', '/proc/sys/net/ipv6/conf/br-x/disable_ipv6').trim()).toBe('1');
    expect(nsId('/proc/thread-self/ns/net')).toBe(nsId('/proc/self/ns/net'));
  });

  it('writeSysctl names the path and netns when it fails, and refuses paths outside /proc/sys', () => {
    const a = fx.make();
    expect(() => writeSysctl('/proc/sys/net/ipv6/conf/nosuchdev/disable_ipv6', '1', a.path)).toThrow(/nosuchdev\/disable_ipv6 in \/var\/run\/netns\/.*: ENOENT/);
    expect(() => writeSysctl('/etc/passwd', 'x')).toThrow(/path: "\/etc\/passwd" is invalid: must be an absolute path under \/proc\/sys\//);
  });
});
