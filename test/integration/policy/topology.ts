// A one-node "cluster" in network namespaces for the policy tests, wired the way the CNI wires
// pods: a node netns with a bridge (br0, gateway 10.0.255.254/16), one netns per pod with a veth
// whose host end is a bridge port in hairpin mode, br_netfilter's bridge-nf-call-iptables=1 set inside the node
// netns (so bridged pod↔pod IP passes the inet forward hook), and an "outside" netns routed
// through the node (10.9.0.2, standing in for a pod or host on another node). Every pod runs one
// server on TCP 80, 81, 8080 and UDP 53, 81 that answers each connection or datagram.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { createNftPolicyEnforcer, type PolicyEnforcer } from '../../../lib/policy/index.js';
import { addNetns, delNetns, inNs, sh } from '../traffic/netns.js';

export interface TopoPod { ref: string; ns: string; ip: string }

export const TCP_PORTS = [80, 81, 8080];
export const UDP_PORTS = [53, 81];

const SERVER = `const net=require('node:net'),dgram=require('node:dgram');const [tcp,udp]=JSON.parse(process.argv[1]);let n=0;const up=()=>{if(++n===tcp.length+udp.length)console.log('listening')};
for(const p of tcp){net.createServer(c=>{c.on('error',()=>{});c.end('hi\\n')}).listen(p,'0.0.0.0',up)}
for(const p of udp){const s=dgram.createSocket('udp4');s.on('message',(m,r)=>s.send('hi',r.port,r.address));s.bind(p,'0.0.0.0',up)}`;

// Runs every probe at once; each answers ok (data came back), no (timeout) or refused.
const PROBER = `const net=require('node:net'),dgram=require('node:dgram');const probes=JSON.parse(process.argv[1]);const ms=+process.argv[2];
const tcp=(h,p)=>new Promise(r=>{const c=net.connect({host:h,port:p});const t=setTimeout(()=>{c.destroy();r('no')},ms);c.on('data',()=>{clearTimeout(t);c.destroy();r('ok')});c.on('error',e=>{clearTimeout(t);r(e.code==='ECONNREFUSED'?'refused':'no')})});
const udp=(h,p)=>new Promise(r=>{const s=dgram.createSocket('udp4');const t=setTimeout(()=>{s.close();r('no')},ms);s.on('message',()=>{clearTimeout(t);s.close();r('ok')});s.send('x',p,h)});
Promise.all(probes.map(([h,proto,p])=>proto==='tcp'?tcp(h,p):udp(h,p))).then(r=>console.log(JSON.stringify(r)));`;

export interface Topology {
  node: string;
  outside: string;
  pods: Map<string, TopoPod>;
  /** Runs probes from a pod (by ref), the node, or "outside"; returns ok/no/refused per probe. */
  probe(from: string, probes: [dst: string, proto: 'tcp' | 'udp', port: number][], timeoutMs?: number): Promise<string[]>;
  destroy(): Promise<void>;
}

export const OUTSIDE_IP = '10.9.0.2';
export const NODE_UPLINK_IP = '10.9.0.1';
export const GATEWAY_IP = '10.0.255.254';

export async function createTopology(prefix: string, pods: { ref: string; ip: string }[]): Promise<Topology> {
  const node = `${prefix}node`;
  const outside = `${prefix}out`;
  const servers: ChildProcess[] = [];
  const all: string[] = [node, outside];
  const map = new Map<string, TopoPod>();
  const destroy = async () => {
    for (const s of servers) if (s.exitCode === null && s.pid !== undefined) s.kill('SIGKILL');
    await delNetns(...all);
  };
  try {
    await addNetns(node);
    await addNetns(outside);
    await inNs(node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    await inNs(node, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1');
    await sh('ip', ['-n', node, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh('ip', ['-n', node, 'addr', 'add', `${GATEWAY_IP}/16`, 'dev', 'br0']);
    await sh('ip', ['-n', node, 'link', 'set', 'br0', 'up']);
    await sh('ip', ['-n', node, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
    await sh('ip', ['-n', node, 'addr', 'add', `${NODE_UPLINK_IP}/24`, 'dev', 'up0']);
    await sh('ip', ['-n', node, 'link', 'set', 'up0', 'up']);
    await sh('ip', ['-n', outside, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
    await sh('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
    await sh('ip', ['-n', outside, 'route', 'add', '10.0.0.0/16', 'via', NODE_UPLINK_IP]);
    for (const [i, p] of pods.entries()) {
      const ns = `${prefix}p${i}`;
      all.push(ns);
      await addNetns(ns);
      await sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `veth${i}`, 'netns', node]);
      await sh('ip', ['-n', ns, 'addr', 'add', `${p.ip}/16`, 'dev', 'eth0']);
      await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', GATEWAY_IP]);
      await sh('ip', ['-n', node, 'link', 'set', `veth${i}`, 'master', 'br0', 'up']);
      // hairpin, as the bridge CNI plugin sets it (hairpinMode): a pod reaching itself through a
      // Service address is DNATed back out of the port it came in on
      await sh('ip', ['-n', node, 'link', 'set', `veth${i}`, 'type', 'bridge_slave', 'hairpin', 'on']);
      map.set(p.ref, { ref: p.ref, ns, ip: p.ip });
      const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, JSON.stringify([TCP_PORTS, UDP_PORTS])], { stdio: ['ignore', 'pipe', 'pipe'] });
      servers.push(proc);
      await new Promise<void>((resolve, reject) => {
        let err = '';
        proc.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
        proc.stdout?.once('data', () => resolve());
        proc.once('exit', (code) => reject(new Error(`server in ${ns} exited (${String(code)}): ${err}`)));
      });
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  const nsOf = (from: string) => (from === 'node' ? node : from === 'outside' ? outside : map.get(from)?.ns);
  return {
    node,
    outside,
    pods: map,
    async probe(from, probes, timeoutMs = 1200) {
      const ns = nsOf(from);
      if (ns === undefined) throw new Error(`unknown probe source ${from}`);
      return JSON.parse(await inNs(ns, process.execPath, '-e', PROBER, JSON.stringify(probes), String(timeoutMs))) as string[];
    },
    destroy,
  };
}

/**
 * `nft -j list table inet <table>` in `ns` reduced to its shape: set and map declarations with
 * sorted elements, and each chain's rules with the counters' values left out, so two tables built
 * by different transactions compare equal when they hold the same rules and elements.
 */
export async function tableShape(ns: string, table = 'twill-policy'): Promise<{ sets: Record<string, unknown>; chains: Record<string, unknown[]> }> {
  const j = JSON.parse(await inNs(ns, 'nft', '-j', 'list', 'table', 'inet', table)) as { nftables: Record<string, Record<string, unknown>>[] };
  const sets: Record<string, unknown> = {};
  const chains: Record<string, unknown[]> = {};
  for (const item of j.nftables) {
    const s = item.set ?? item.map;
    if (s) sets[String(s.name)] = { type: s.type, map: s.map, flags: s.flags, elem: ((s.elem as unknown[] | undefined) ?? []).map((e) => JSON.stringify(e)).sort() };
    if (item.chain) chains[String(item.chain.name)] ??= [];
    if (item.rule) (chains[String(item.rule.chain)] ??= []).push(JSON.stringify(item.rule.expr).replace(/"counter":\{[^}]*\}/g, '"counter":{}'));
  }
  return { sets, chains };
}

/** The pods the policy tests run, by "namespace/name". */
export const POD_IPS: Record<string, string> = { 'x/a': '10.0.1.1', 'x/b': '10.0.1.2', 'y/a': '10.0.2.1', 'z/a': '10.0.3.1' };

/**
 * A topology with POD_IPS and an nftables policy enforcer on its node, built before the enclosing
 * describe's tests and destroyed after them; the fields are set once beforeAll has run.
 */
export function usePolicyNode(prefix: string): { topo: Topology; enforcer: PolicyEnforcer } {
  const node = {} as { topo: Topology; enforcer: PolicyEnforcer };
  beforeAll(async () => {
    node.topo = await createTopology(prefix, Object.entries(POD_IPS).map(([ref, ip]) => ({ ref, ip })));
    node.enforcer = createNftPolicyEnforcer({ netns: node.topo.node });
  });
  afterAll(async () => { await node.topo?.destroy(); });
  return node;
}
