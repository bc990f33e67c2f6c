// The iproute2 anchor every twill kernel-programming number is compared against: the same
// per-peer entries the agent writes (ARP, FDB, nexthop object, route via nhid — docs/design.md,
// "Decisions, measured"), written by `bridge -batch` and `ip -batch` from pre-generated files. Only the
// two batch runs are timed (process start included, as an operator would pay it); creating the
// device and writing the files are not.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nexthopId } from '../../agent/backend/vxlan/desired.js';
import { parsePrefix } from '../../lib/ip/prefix.js';

export interface BaselinePeer {
  subnet: string;   // "10.1.2.0/24"
  publicIP: string; // remote VTEP (FDB dst)
  vtepMAC: string;  // remote VTEP MAC (ARP lladdr, FDB key)
}

export interface BaselineOptions {
  /** VXLAN device name (default twill.1). */
  dev?: string;
  /** Use an existing device instead of creating it (it must exist). */
  reuseDevice?: boolean;
  /** rtnetlink protocol tag of routes and nexthops (default 116, twill's). */
  protocol?: number;
}

/** The nexthop id twill derives from a subnet (the agent's own function, so both sides match). */
export function nexthopIdOf(subnet: string): number {
  return nexthopId(parsePrefix(subnet, { family: 4 }));
}

/** The two batch files: FDB lines for `bridge -batch`, ARP/nexthop/route lines for `ip -batch`. */
export function baselineBatches(peers: readonly BaselinePeer[], dev = 'twill.1', protocol = 116): { bridge: string; ip: string } {
  const bridge: string[] = [];
  const neigh: string[] = [];
  const nh: string[] = [];
  const route: string[] = [];
  for (const p of peers) {
    const gw = p.subnet.split('/')[0]!;
    const id = nexthopIdOf(p.subnet);
    neigh.push(`neigh replace ${gw} lladdr ${p.vtepMAC} dev ${dev} nud permanent`);
    bridge.push(`fdb replace ${p.vtepMAC} dev ${dev} dst ${p.publicIP} self permanent`);
    nh.push(`nexthop replace id ${id} via ${gw} dev ${dev} onlink proto ${protocol}`);
    route.push(`route replace ${p.subnet} nhid ${id} proto ${protocol}`);
  }
  return { bridge: bridge.join('\n') + '\n', ip: [...neigh, ...nh, ...route].join('\n') + '\n' };
}

/**
 * Programs `peers` with iproute2 in `netns` (undefined = the current one) and returns the wall
 * time of the batch runs in ms. Creates `dev` (vxlan id 1, dstport 8472, nolearning, up) unless
 * `reuseDevice`.
 */
export async function programWithIproute2(netns: string | undefined, peers: readonly BaselinePeer[], opts: BaselineOptions = {}): Promise<number> {
  const dev = opts.dev ?? 'twill.1';
  const nsArgs = netns === undefined ? [] : ['-n', netns];
  const run = (cmd: string, args: string[]) => execFileSync(cmd, [...nsArgs, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (!opts.reuseDevice) {
    run('ip', ['link', 'add', dev, 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning']);
    run('ip', ['link', 'set', dev, 'up']);
  }
  const dir = mkdtempSync(join(tmpdir(), 'twill-iproute2-'));
  try {
    const b = baselineBatches(peers, dev, opts.protocol ?? 116);
    writeFileSync(join(dir, 'bridge.batch'), b.bridge);
    writeFileSync(join(dir, 'ip.batch'), b.ip);
    const t0 = performance.now();
    run('bridge', ['-batch', join(dir, 'bridge.batch')]);
    run('ip', ['-batch', join(dir, 'ip.batch')]);
    return performance.now() - t0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
