// A realistic AgentStatus snapshot shared by the render, CLI and HTTP tests.
import type { AgentStatus } from '../../../agent/state.js';

export const NOW = Date.UTC(2025, 0, 2, 3, 4, 5);   // 2025-01-02 03:04:05 UTC

export function sampleStatus(): AgentStatus {
  return {
    version: '0.1.0',
    node: 'node-a',
    mode: 'etcd',
    startedAt: NOW - (2 * 3600 + 5 * 60 + 7) * 1000,
    ready: true,
    notReadyReasons: [],
    conditions: { config: true, lease: true, subnetFile: true, firstReconcile: true, trafficRules: true, store: true },
    lease: {
      state: 'alive',
      subnet: '10.244.1.0/24',
      publicIP: '192.0.2.10',
      vtepMAC: '0a:58:0a:f4:01:00',
      expiration: NOW + (23 * 3600 + 59 * 60 + 30) * 1000,
    },
    device: { name: 'twill.1', mtu: 1450, index: 7 },
    peers: [
      { key: '10.244.10.0-24', subnet: '10.244.10.0/24', publicIP: '192.0.2.20', vtepMAC: '0a:58:0a:f4:0a:00', state: 'programmed' },
      { key: '10.244.2.0-24', subnet: '10.244.2.0/24', publicIP: '192.0.2.11', vtepMAC: '0a:58:0a:f4:02:00', state: 'programmed' },
      { key: '10.244.3.0-24', subnet: '10.244.3.0/24', publicIP: '192.0.2.12', vtepMAC: '0a:58:0a:f4:03:00', state: 'pending' },
      { key: '10.244.9.0-24', subnet: '10.244.9.0/24', publicIP: '224.0.0.1', vtepMAC: '0a:58:0a:f4:09:00', state: 'invalid', reason: 'public IP is not a unicast host address' },
    ],
    lastReconcile: { at: NOW - 12_000, durationMs: 3.42, ok: true, changes: 4, errors: 0, trigger: 'lease' },
    repairs: { route: 2, nexthop: 0, arp: 0, fdb: 1, device: 0 },
  };
}

export function notReadyStatus(): AgentStatus {
  const s = sampleStatus();
  return {
    ...s,
    ready: false,
    notReadyReasons: ['network config: Network: "10.244.0.0/33" is invalid: must be an IPv4 prefix', 'first reconcile has not succeeded yet'],
    conditions: { ...s.conditions, config: false, firstReconcile: false },
    lease: { state: 'pending' },
    device: undefined,
    peers: [],
    lastReconcile: undefined,
    repairs: {},
  };
}
