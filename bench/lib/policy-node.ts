// The node of the NetworkPolicy benchmark (bench/policy.ts): an agent netns on the kube rig's
// switch (bench/lib/kube-rig.ts: `uplink`, where the apiserver is reached), with pods wired into
// it the way a bridge CNI plugin wires them — a bridge `cni0` holding the podCIDR's first address,
// one netns per pod whose eth0 is a veth with its host end on cni0 (hairpin on), an address from
// the podCIDR and a default route via cni0 — plus an "outside" host routed through the node on a
// veth of its own (a client that is no pod of this node). ip_forward=1 and
// net.bridge.bridge-nf-call-iptables=1 are set in the node netns, as a kubeadm node has them.
//
// Every pod and the outside host can run a prober (PROBER below): a long-lived node process that
// takes JSON commands on stdin — short TCP connects in a loop until a verdict flips, sequential
// connects timed, or one verdict — and answers one JSON line each. Its clock is
// performance.timeOrigin + performance.now(), the same wall-clock-based high-resolution time the
// benchmark process reads, so times from both compare to well under a millisecond.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { delNetns, makeAgentNetns, delAgentNetns } from './kube-rig.js';

const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });
const nsx = (ns: string, ...cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

export interface NodePod { name: string; ip: string; netns: string }
export interface PolicyNode {
  netns: string;
  outside: { netns: string; ip: string; cidr: string };
  pods: Map<string, NodePod>;
  gateway: string;
  destroy(): void;
}

/** /24 helpers: the n-th address of a …0/24. */
export const addrOf = (cidr: string, n: number): string => cidr.replace(/\.0\/24$/, `.${n}`);

export function createPolicyNode(o: {
  tag: string; sw: string; uplinkPort: string; uplinkAddr: string; podCIDR: string; outsideCidr: string; pods: { name: string; ip: string }[];
}): PolicyNode {
  const netns = `${o.tag}-node`;
  const outsideNs = `${o.tag}-out`;
  const short = o.tag.slice(0, 8);
  const made: string[] = [];
  const gateway = addrOf(o.podCIDR, 1);
  const node: PolicyNode = {
    netns, outside: { netns: outsideNs, ip: addrOf(o.outsideCidr, 2), cidr: o.outsideCidr }, pods: new Map(), gateway,
    destroy() {
      for (const ns of made) delNetns(ns);
      delAgentNetns(o.sw, netns, o.uplinkPort);
    },
  };
  try {
    makeAgentNetns(o.sw, netns, o.uplinkPort, o.uplinkAddr);
    nsx(netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    nsx(netns, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1');
    ip('-n', netns, 'link', 'add', 'cni0', 'type', 'bridge');
    ip('-n', netns, 'addr', 'add', `${gateway}/24`, 'dev', 'cni0');
    ip('-n', netns, 'link', 'set', 'cni0', 'up');
    for (const [i, p] of o.pods.entries()) {
      const pns = `${o.tag}-${p.name}`;
      made.push(pns);
      ip('netns', 'add', pns);
      ip('-n', pns, 'link', 'set', 'lo', 'up');
      ip('-n', netns, 'link', 'add', `${short}v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pns);
      ip('-n', netns, 'link', 'set', `${short}v${i}`, 'master', 'cni0', 'up');
      ip('-n', netns, 'link', 'set', `${short}v${i}`, 'type', 'bridge_slave', 'hairpin', 'on');
      ip('-n', pns, 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0');
      ip('-n', pns, 'link', 'set', 'eth0', 'up');
      ip('-n', pns, 'route', 'add', 'default', 'via', gateway);
      clientSysctls(pns);
      node.pods.set(p.name, { name: p.name, ip: p.ip, netns: pns });
    }
    made.push(outsideNs);
    ip('netns', 'add', outsideNs);
    ip('-n', outsideNs, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'link', 'add', `${short}o`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outsideNs);
    ip('-n', netns, 'addr', 'add', `${addrOf(o.outsideCidr, 1)}/24`, 'dev', `${short}o`);
    ip('-n', netns, 'link', 'set', `${short}o`, 'up');
    ip('-n', outsideNs, 'addr', 'add', `${node.outside.ip}/24`, 'dev', 'eth0');
    ip('-n', outsideNs, 'link', 'set', 'eth0', 'up');
    ip('-n', outsideNs, 'route', 'add', o.podCIDR, 'via', addrOf(o.outsideCidr, 1));
    clientSysctls(outsideNs);
    const v = nsx(netns, 'sysctl', '-n', 'net.bridge.bridge-nf-call-iptables').trim();
    if (v !== '1') throw new Error(`${netns}: net.bridge.bridge-nf-call-iptables is ${v} after setting it to 1`);
  } catch (err) {
    node.destroy();
    throw err;
  }
  return node;
}

/**
 * The probes open tens of thousands of short connections: the full port range and TIME_WAIT reuse
 * on the connecting side, so a port shortage never reads as a denied connection (the prober also
 * fails on any error other than a timeout or a refusal).
 */
function clientSysctls(ns: string): void {
  nsx(ns, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000');
  nsx(ns, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1');
}

// ---- servers ----------------------------------------------------------------------------------

const SERVER = `const net=require('node:net');let n=0;const ports=JSON.parse(process.argv[1]);
for(const p of ports){const s=net.createServer(c=>{c.on('error',()=>{});c.resume()});s.listen({port:p,host:'0.0.0.0',backlog:4096},()=>{if(++n===ports.length)console.log('listening')})}`;

/** A TCP server accepting every connection on `ports` (closed when the client closes), in `netns`. */
export async function startServer(netns: string, ports: number[]): Promise<ChildProcess> {
  const proc = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', SERVER, JSON.stringify(ports)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (code) => reject(new Error(`server in ${netns} exited (${String(code)}): ${err}`)));
  });
  return proc;
}

// ---- the prober ---------------------------------------------------------------------------------

const PROBER = `const net=require('node:net'),rl=require('node:readline');const now=()=>performance.timeOrigin+performance.now();
const sleep=ms=>new Promise(r=>setTimeout(r,ms));
function attempt(h,p,ms){return new Promise((res,rej)=>{const t0=now();const c=net.connect({host:h,port:p});
const tm=setTimeout(()=>{c.destroy();res({t0,v:'denied'})},ms);
c.once('connect',()=>{clearTimeout(tm);c.destroy();res({t0,v:'ok'})});
c.once('error',e=>{clearTimeout(tm);if(e.code==='ECONNREFUSED')res({t0,v:'denied'});else rej(e)})})}
async function flip(c){const start=now();const pend=[];let seen=false;const res=[];
while(!seen&&now()-start<c.maxMs){pend.push(attempt(c.host,c.port,c.timeoutMs).then(x=>{res.push(x);if(x.v===c.want)seen=true}));await sleep(c.everyMs)}
await Promise.all(pend);const hits=res.filter(x=>x.v===c.want).map(x=>x.t0);
if(!hits.length)return{error:'no '+c.want+' verdict within '+c.maxMs+' ms ('+res.length+' attempts)'};
const at=Math.min(...hits);return{at,attempts:res.length,against:res.filter(x=>x.t0>at&&x.v!==c.want).length}}
async function rtt(c){const us=[];for(let i=0;i<c.n;i++){us.push(await new Promise((res,rej)=>{const t0=process.hrtime.bigint();const s=net.connect({host:c.host,port:c.port});
const tm=setTimeout(()=>{s.destroy();rej(new Error('connect '+c.host+':'+c.port+' timed out'))},2000);
s.once('connect',()=>{const d=Number(process.hrtime.bigint()-t0)/1000;clearTimeout(tm);s.destroy();res(d)});s.once('error',e=>{clearTimeout(tm);rej(e)})}))}return{us}}
async function verdict(c){return{v:(await attempt(c.host,c.port,c.timeoutMs)).v}}
const ops={flip,rtt,verdict};
rl.createInterface({input:process.stdin}).on('line',async l=>{const c=JSON.parse(l);let out;try{out=await ops[c.op](c)}catch(e){out={error:String(e&&e.message||e)}}
process.stdout.write(JSON.stringify({id:c.id,...out})+'\\n')});console.log(JSON.stringify({ready:true}))`;

export interface FlipResult { at: number; attempts: number; against: number }

export class Prober {
  private readonly proc: ChildProcess;
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly ready: Promise<void>;

  readonly netns: string;

  constructor(netns: string) {
    this.netns = netns;
    this.proc = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', PROBER], { stdio: ['pipe', 'pipe', 'inherit'] });
    let ok: () => void;
    this.ready = new Promise((r) => { ok = r; });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      const m = JSON.parse(l) as Record<string, unknown>;
      if (m.ready) { ok(); return; }
      const w = this.waiting.get(m.id as number);
      this.waiting.delete(m.id as number);
      if (!w) return;
      if (typeof m.error === 'string') w.reject(new Error(`prober in ${netns}: ${m.error}`)); else w.resolve(m);
    });
    this.proc.once('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`prober in ${netns} exited (${String(code)})`));
      this.waiting.clear();
    });
  }

  private async call(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.ready;
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.proc.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }

  /**
   * Connects every `everyMs` until one shows `want` (connected = ok; timeout after `timeoutMs` or
   * refused = denied); `at` is the start (epoch ms, sub-ms) of the earliest attempt with `want`.
   */
  async flip(host: string, port: number, want: 'ok' | 'denied', o: { everyMs?: number; timeoutMs?: number; maxMs?: number } = {}): Promise<FlipResult> {
    return await this.call({ op: 'flip', host, port, want, everyMs: o.everyMs ?? 1, timeoutMs: o.timeoutMs ?? 200, maxMs: o.maxMs ?? 10_000 }) as unknown as FlipResult;
  }

  /** `n` connects one after the other; each one's connect() → connected time, µs. */
  async rtt(host: string, port: number, n: number): Promise<number[]> {
    return (await this.call({ op: 'rtt', host, port, n })).us as number[];
  }

  async verdict(host: string, port: number, timeoutMs = 300): Promise<'ok' | 'denied'> {
    return (await this.call({ op: 'verdict', host, port, timeoutMs })).v as 'ok' | 'denied';
  }

  close(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Epoch milliseconds with sub-millisecond resolution (the prober's clock). */
export const nowMs = (): number => performance.timeOrigin + performance.now();
