// flanneld v0.28.11 (bench/peers/versions.env) as the agent benchmarks run it: etcd mode, as
// users start it without Kubernetes — its etcd endpoints and prefix, the underlay interface and
// public IP given, the subnet file in a private directory, --ip-masq off (twill's default too),
// the VXLAN backend from the same network config twill reads (VNI 1, port 8472). flanneld names
// its device flannel.<VNI> with no flag to change it: flannel.1, inside the benchmark's own netns.
// Its log (stderr, klog at the default verbosity) goes to a file, as a container runtime would
// take it; nothing reads it while it runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { peersBin } from './peers.js';

/** flannel's default etcd prefix. */
export const FLANNEL_PREFIX = '/coreos.com/network';
/** The VXLAN device flanneld creates for VNI 1. */
export const FLANNEL_DEV = 'flannel.1';

export interface Flanneld { proc: ChildProcess; log: () => string }

/** Starts flanneld against `endpoint` on interface `iface` (address `publicIP`); its files live in `dir`. */
export function spawnFlanneld(o: { endpoint: string; dir: string; iface: string; publicIP: string }): Flanneld {
  const logPath = join(o.dir, 'flanneld.log');
  const fd = openSync(logPath, 'w');
  const proc = spawn(join(peersBin(), 'flanneld'), [
    '--etcd-endpoints', o.endpoint, '--etcd-prefix', FLANNEL_PREFIX,
    '--iface', o.iface, '--public-ip', o.publicIP,
    '--subnet-file', join(o.dir, 'flannel-subnet.env'),
    '--ip-masq=false', '--healthz-port', '0',
  ], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return { proc, log: () => { try { return readFileSync(logPath, 'utf8'); } catch { return ''; } } };
}
