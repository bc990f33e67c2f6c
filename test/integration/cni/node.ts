// A throw-away "node" for CNI integration tests: a host netns (the plugin runs inside it through
// `ip netns exec`, so its bridge, veths and sysctls never touch the machine's root netns), a
// tmp dir with subnet.env and the IPAM data dir, and pod netns created on demand. Everything
// carries a unique prefix and is removed by cleanup(), also after a failed test.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniquePrefix } from '../../util/root.js';
import { cniExec, deleteNetns, type CniCmd, type CniExecEnv, type CniExecOptions, type CniExecResult } from '../../util/pods.js';

export const SUBNET_ENV = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

export class TestNode {
  readonly prefix: string;
  readonly plugin: string;
  readonly host: string;
  readonly dir: string;
  private readonly pods = new Set<string>();
  private seq = 0;

  /** `tag` starts every netns name of this node (default "tc"; then pid, random, "-"). */
  constructor(plugin: string, subnetEnv = SUBNET_ENV, tag = 'tc') {
    this.prefix = uniquePrefix(tag);
    this.plugin = plugin;
    this.host = `${this.prefix}h`;
    this.dir = mkdtempSync(join(tmpdir(), 'twill-cni-it-'));
    writeFileSync(this.subnetFile, subnetEnv);
    execFileSync('ip', ['netns', 'add', this.host]);
    execFileSync('ip', ['-n', this.host, 'link', 'set', 'lo', 'up']);
  }

  get subnetFile(): string { return join(this.dir, 'subnet.env'); }
  get dataDir(): string { return join(this.dir, 'data'); }
  get storeDir(): string { return join(this.dataDir, 'cbr0'); }

  conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: '1.1.0', name: 'cbr0', type: 'twill', subnetFile: this.subnetFile, dataDir: this.dataDir, ...extra };
  }

  /** A fresh pod netns; returns its name and path. */
  pod(): { name: string; netns: string; id: string } {
    const name = `${this.prefix}p${this.seq++}`;
    execFileSync('ip', ['netns', 'add', name]);
    this.pods.add(name);
    return { name, netns: `/var/run/netns/${name}`, id: `ctr-${name}` };
  }

  dropPod(name: string): void {
    deleteNetns(name);
    this.pods.delete(name);
  }

  exec(cmd: CniCmd, conf: object, env: CniExecEnv = {}, opts: Pick<CniExecOptions, 'onSpawn' | 'onStderr' | 'timeoutMs'> = {}): Promise<CniExecResult> {
    return cniExec(cmd, conf, { ifname: 'eth0', ...env }, { plugin: this.plugin, hostNetns: this.host, ...opts });
  }

  /** IPAM records: file name -> content. */
  records(): Record<string, string> {
    if (!existsSync(this.storeDir)) return {};
    const out: Record<string, string> = {};
    for (const f of readdirSync(this.storeDir)) {
      if (f === 'lock' || f.startsWith('last_reserved_ip.')) continue;
      out[f] = readFileSync(join(this.storeDir, f), 'utf8');
    }
    return out;
  }

  ip(netns: string, ...args: string[]): string {
    return execFileSync('ip', ['-n', netns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  }

  /** Host-side links whose name starts with "tw" (twill veths) and the bridge. */
  hostLinks(): string[] {
    return JSON.parse(this.ip(this.host, '-j', 'link', 'show')).map((l: { ifname: string }) => l.ifname);
  }

  cleanup(): void {
    for (const p of [...this.pods]) this.dropPod(p);
    deleteNetns(this.host);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
