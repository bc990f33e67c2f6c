import { describe, expect, it } from 'vitest';
import { compareSubnets, formatDuration, formatRelative, renderStatus } from '../../../agent/status.js';
import { NOW, notReadyStatus, sampleStatus } from './fixture.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const plain = (s: string) => s.replace(ANSI, '');

describe('renderStatus', () => {
  const out = renderStatus(sampleStatus(), { color: false, now: NOW });
  const lines = out.split('\n');

  it('renders the key lines of a ready agent', () => {
    expect(lines[0]).toBe('twilld 0.1.0 on node-a (etcd mode), up 2h 5m');
    expect(lines).toContain('Ready:           yes');
    expect(lines).toContain('Lease:           alive');
    expect(lines).toContain('  subnet         10.244.1.0/24');
    expect(lines).toContain('  public IP      192.0.2.10');
    expect(lines).toContain('  VTEP MAC       0a:58:0a:f4:01:00');
    expect(lines).toContain('  expires        2025-01-03 03:03:35 UTC (in 23h 59m)');
    expect(lines).toContain('Device:          twill.1 (index 7, MTU 1450)');
    expect(lines).toContain('Last reconcile:  12s ago, ok, 3.4 ms, 4 changes, 0 errors, trigger lease');
    expect(lines).toContain('Repairs:         fdb 1, route 2 (total 3)');
    expect(lines).toContain('Peers:           4 (2 programmed, 1 pending, 1 invalid)');
  });

  it('prints the peers table sorted numerically by subnet, columns aligned', () => {
    const start = lines.findIndex((l) => l.startsWith('  SUBNET'));
    const table = lines.slice(start, start + 5);
    expect(table).toEqual([
      '  SUBNET          PUBLIC IP   VTEP MAC           STATE       REASON',
      '  10.244.2.0/24   192.0.2.11  0a:58:0a:f4:02:00  programmed',
      '  10.244.3.0/24   192.0.2.12  0a:58:0a:f4:03:00  pending',
      '  10.244.9.0/24   224.0.0.1   0a:58:0a:f4:09:00  invalid     public IP is not a unicast host address',
      '  10.244.10.0/24  192.0.2.20  0a:58:0a:f4:0a:00  programmed',
    ]);
    for (const l of table) expect(l).toBe(l.trimEnd());
  });

  it('has no escape codes without colour, and the same text with colour', () => {
    expect(out).not.toMatch(ANSI);
    const colored = renderStatus(sampleStatus(), { color: true, now: NOW });
    expect(colored).toMatch(ANSI);
    expect(plain(colored)).toBe(out);
    expect(colored).toContain('\x1b[32mprogrammed\x1b[0m');
    expect(colored).toContain('\x1b[33mpending\x1b[0m');
    expect(colored).toContain('\x1b[35minvalid\x1b[0m');
  });

  it('explains why an agent is not ready, one reason per line', () => {
    const text = renderStatus(notReadyStatus(), { color: false, now: NOW });
    expect(text).toContain('Ready:           no\n' +
      '                 - network config: Network: "10.244.0.0/33" is invalid: must be an IPv4 prefix\n' +
      '                 - first reconcile has not succeeded yet\n');
    expect(text).toContain('Lease:           pending\nDevice:          not set up yet\n');
    expect(text).toContain('Last reconcile:  none yet');
    expect(text).toContain('Repairs:         none');
    expect(text).toContain('Peers:           0');
    expect(text).not.toContain('SUBNET');
  });

  it('renders a reservation, a failed reconcile and an omitted reason column', () => {
    const s = sampleStatus();
    s.lease.expiration = null;
    s.lastReconcile = { at: NOW - 3_725_000, durationMs: 1534, ok: false, changes: 0, errors: 3, trigger: 'kernel:route' };
    s.peers = s.peers.filter((p) => p.reason === undefined);
    const text = renderStatus(s, { color: false, now: NOW });
    expect(text).toContain('  expires        never (reservation)');
    expect(text).toContain('Last reconcile:  1h 2m ago, failed, 1.53 s, 0 changes, 3 errors, trigger kernel:route');
    expect(text).toContain('  SUBNET          PUBLIC IP   VTEP MAC           STATE\n');
  });
});

describe('formatting helpers', () => {
  it.each([
    [0, '0s'], [999, '0s'], [12_000, '12s'], [250_000, '4m 10s'], [3_600_000, '1h'],
    [(23 * 3600 + 59 * 60 + 59) * 1000, '23h 59m'], [(2 * 86400 + 3 * 3600 + 7) * 1000, '2d 3h'],
  ])('formatDuration(%d) = %s', (ms, want) => {
    expect(formatDuration(ms)).toBe(want);
  });

  it('formats relative times both ways', () => {
    expect(formatRelative(NOW + 90_000, NOW)).toBe('in 1m 30s');
    expect(formatRelative(NOW - 5_000, NOW)).toBe('5s ago');
  });

  it('orders subnets numerically, IPv4 before IPv6', () => {
    const list = ['fd00::/64', '10.244.10.0/24', '10.0.0.0/8', '10.244.9.0/24', '10.244.9.0/25'];
    expect([...list].sort(compareSubnets)).toEqual(['10.0.0.0/8', '10.244.9.0/24', '10.244.9.0/25', '10.244.10.0/24', 'fd00::/64']);
  });
});
