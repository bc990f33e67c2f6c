// A real runtime: containerd + runc from the Debian packages, started by this test with its own
// root/state/socket under a tmp dir, run a container from a busybox-static image built here (an
// OCI layout tarball, no registry) with `ctr run --cni`. The plugin and conflist are put in place
// by the executable's own installer. ctr uses the fixed paths /etc/cni/net.d, /opt/cni/bin and
// /var/lib/cni: they are overlaid in a private mount namespace, and ctr runs inside a test netns
// (its CNI calls create the bridge and veths there), so the machine's paths and root netns stay
// untouched. ctr's own DEL (CNI_NETNS empty) must release everything.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { deleteNetns, ensurePluginBuilt } from '../../util/pods.js';

const BINARIES = ['/usr/bin/containerd', '/usr/bin/ctr', '/usr/bin/containerd-shim-runc-v2', '/usr/sbin/runc', '/bin/busybox'];
const IMAGE = 'docker.io/library/twill-busybox:test';
const NS = 'twill-test';

const sh = (file: string, args: string[], opts: { timeout?: number } = {}) =>
  execFileSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeout ?? 60_000 }).toString();

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** An OCI image layout tarball with /bin/busybox and a few applet links. */
function buildImage(dir: string): string {
  const rootfs = join(dir, 'rootfs');
  const oci = join(dir, 'oci');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(oci, 'blobs', 'sha256'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const a of ['sh', 'ip', 'ping', 'cat', 'sleep']) symlinkSync('busybox', join(rootfs, 'bin', a));
  const layer = join(dir, 'layer.tar');
  sh('tar', ['-C', rootfs, '-cf', layer, '.']);
  const blob = (file: string) => {
    const d = sha256(file);
    copyFileSync(file, join(oci, 'blobs', 'sha256', d));
    return { digest: `sha256:${d}`, size: statSync(file).size };
  };
  const l = blob(layer);
  const write = (name: string, v: unknown) => { writeFileSync(join(dir, name), JSON.stringify(v)); return blob(join(dir, name)); };
  const cfg = write('config.json', {
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64', os: 'linux',
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: [l.digest] },
  });
  const man = write('manifest.json', {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l }],
  });
  writeFileSync(join(oci, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man, annotations: { 'io.containerd.image.name': IMAGE, 'org.opencontainers.image.ref.name': 'test' } }],
  }));
  writeFileSync(join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const tarball = join(dir, 'image.tar');
  sh('tar', ['-C', oci, '-cf', tarball, '.']);
  return tarball;
}

const missing = BINARIES.filter((b) => !existsSync(b));

describeRoot('real runtime: containerd + runc run a container through twill (ctr run --cni)', () => {
  if (missing.length) {
    it.skip(`skipped: ${missing.join(', ')} not installed (apt-get install containerd runc busybox-static)`, () => undefined);
    return;
  }
  const prefix = uniquePrefix('tk');
  const host = `${prefix}h`;
  let dir = '';
  let containerd: ChildProcess | undefined;
  const sock = () => join(dir, 'containerd.sock');
  const ctr = (...a: string[]) => sh('ctr', ['-a', sock(), '-n', NS, ...a]);

  beforeAll(async () => {
    const plugin = ensurePluginBuilt();
    dir = mkdtempSync('/tmp/twill-ctrd-');
    writeFileSync(join(dir, 'config.toml'), [
      'version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]', `  address = "${sock()}"`, '[ttrpc]', `  address = "${sock()}.ttrpc"`, '[debug]', `  address = "${dir}/debug.sock"`,
    ].join('\n') + '\n');
    const log = openSync(join(dir, 'containerd.log'), 'a');
    containerd = spawn('/usr/bin/containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', log, log] });
    for (let i = 0; ; i++) {
      try { ctr('version'); break; } catch (err) {
        if (i > 100 || containerd.exitCode !== null) throw new Error(`containerd did not come up: ${readFileSync(join(dir, 'containerd.log'), 'utf8').slice(-2000)}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    ctr('image', 'import', buildImage(dir));

    // The node: subnet file, conflist, plugin installed by the executable's own installer.
    writeFileSync(join(dir, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
    writeFileSync(join(dir, 'in.conflist'), JSON.stringify({
      cniVersion: '1.0.0', cniVersions: ['0.4.0', '1.0.0', '1.1.0'], name: 'twctr',
      plugins: [{ type: 'twill', bridge: 'twbr0', subnetFile: join(dir, 'subnet.env'), dataDir: join(dir, 'ipam') }],
    }));
    const install = () => JSON.parse(sh(plugin, ['install', '--bin-dir', join(dir, 'bin'), '--conf-dir', join(dir, 'net.d'), '--conflist', join(dir, 'in.conflist')]));
    expect(install()).toMatchObject({ binary: { changed: true }, conflist: { changed: true } });
    expect(install()).toMatchObject({ binary: { changed: false }, conflist: { changed: false } });

    sh('ip', ['netns', 'add', host]);
    sh('ip', ['-n', host, 'link', 'set', 'lo', 'up']);
    // Inside ctr's private mount namespace: overlays over the fixed CNI paths.
    const ovl = join(dir, 'ovl');
    writeFileSync(join(dir, 'run.sh'), [
      'set -e',
      ...['etc', 'opt', 'var/lib'].flatMap((d) => {
        const n = d.replace('/', '_');
        return [`mkdir -p ${ovl}/${n}-up ${ovl}/${n}-w`, `mount -t overlay overlay -o lowerdir=/${d},upperdir=${ovl}/${n}-up,workdir=${ovl}/${n}-w /${d}`];
      }),
      'mkdir -p /etc/cni/net.d /opt/cni/bin',
      `mount --bind ${dir}/net.d /etc/cni/net.d`,
      `mount --bind ${dir}/bin /opt/cni/bin`,
      `exec ctr -a ${sock()} -n ${NS} run --rm --cni --snapshotter native ${IMAGE} "$1" /bin/sh -c "$2"`,
    ].join('\n') + '\n');
  }, 180_000);

  afterAll(async () => {
    if (containerd?.pid) {
      containerd.kill('SIGTERM');
      for (let i = 0; i < 50 && containerd.exitCode === null && containerd.signalCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      if (containerd.exitCode === null && containerd.signalCode === null) containerd.kill('SIGKILL');
    }
    if (dir) killOurShims(dir);
    deleteNetns(host);
    if (dir) {
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  function runContainer(id: string, script: string): string {
    return execFileSync('ip', ['netns', 'exec', host, 'unshare', '-m', '--propagation', 'private', 'sh', join(dir, 'run.sh'), id, script],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 90_000 }).toString();
  }

  it('gets an address from the node subnet, reaches the gateway, and the runtime DEL releases it', () => {
    const out = runContainer('c1', 'ip -4 addr show eth0; ip route; ping -c 1 -W 3 10.244.7.1');
    const m = /inet (10\.244\.7\.(\d+))\/24/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(1);
    expect(out).toContain('default via 10.244.7.1 dev eth0');
    expect(out).toMatch(/1 packets transmitted, 1 packets received/);

    // The task exited and ctr removed it: its CNI DEL released the address and the veth.
    const store = join(dir, 'ipam', 'twctr');
    expect(readdirSync(store).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))).toEqual([]);
    expect(readFileSync(join(store, 'last_reserved_ip.0'), 'utf8')).toBe(m![1]);
    const links = JSON.parse(sh('ip', ['-n', host, '-j', 'link', 'show'])).map((l: { ifname: string }) => l.ifname);
    expect(links).toContain('twbr0');
    expect(links.filter((l: string) => l.startsWith('tw') && l !== 'twbr0')).toEqual([]);
    expect(ctr('containers', 'ls', '-q').trim()).toBe('');

    // A second container: the next address (round robin), released again.
    const out2 = runContainer('c2', 'ip -4 addr show eth0');
    expect(out2).toMatch(new RegExp(`inet 10\\.244\\.7\\.${Number(m![2]) + 1}/24`));
    expect(readdirSync(store).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))).toEqual([]);
    // Nothing of this leaked onto the machine's fixed paths.
    for (const p of ['/etc/cni/net.d/10-twill.conflist', '/opt/cni/bin/twill']) expect(existsSync(p)).toBe(false);
  }, 180_000);
});

/** containerd-shim-runc-v2 processes serving OUR containerd (their command line names our socket). */
function killOurShims(dir: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('containerd-shim') && cmd.includes(dir)) process.kill(Number(pid), 'SIGKILL');
    } catch { /* gone */ }
  }
}

function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(dir));
  for (const m of mounts.reverse()) {
    try { execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch { /* already gone */ }
  }
}
