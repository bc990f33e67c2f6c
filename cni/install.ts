// `twill install`: what the DaemonSet's init container runs to put the plugin on the node.
// It copies this very executable to <bin-dir>/twill and writes the conflist to <conf-dir>,
// each only when the content differs and always atomically (temp file in the same directory,
// then rename), so a runtime scanning those directories never sees a half-written file and a
// node that is already up to date is not touched at all (no needless inotify events).
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  confName: string;
  source: string;           // the executable to copy
  conflist: string;         // the conflist text to write
}

export interface InstallReport {
  binary: { path: string; changed: boolean };
  conflist: { path: string; changed: boolean };
}

export const INSTALL_USAGE = `Usage: twill install [options]
Copies the twill executable into the CNI bin directory and writes the CNI network config list,
each only when changed, atomically. Every option can also be set as an environment variable.

  --bin-dir DIR        CNI plugin directory          [TWILL_CNI_BIN_DIR, /opt/cni/bin]
  --conf-dir DIR       CNI config directory          [TWILL_CNI_CONF_DIR, /etc/cni/net.d]
  --conf-name NAME     config list file name         [TWILL_CNI_CONF_NAME, 10-twill.conflist]
  --conflist FILE      use this conflist verbatim    [TWILL_CNI_CONFLIST]
  --network-name NAME  network name in the default conflist (cbr0 = flannel's, keeps its
                       host-local records)           [TWILL_CNI_NETWORK_NAME, cbr0]
  --bridge NAME        bridge in the default conflist [TWILL_CNI_BRIDGE, cni0]
  --source FILE        executable to copy (default: this executable)
  --help
`;

/** The conflist written when none is given: CNI 1.0.0 for older runtimes, up to 1.1.0 for newer. */
export function defaultConflist(networkName: string, bridge: string): string {
  const conf = {
    cniVersion: '1.0.0',
    cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    name: networkName,
    plugins: [{ type: 'twill', bridge, isDefaultGateway: true, hairpinMode: true }],
  };
  return JSON.stringify(conf, null, 2) + '\n';
}

export function install(o: InstallOptions): InstallReport {
  const bin = join(o.binDir, 'twill');
  const conf = join(o.confDir, o.confName);
  validateConflist(o.conflist);
  return {
    binary: { path: bin, changed: writeIfChanged(bin, readFileSync(o.source), 0o755) },
    conflist: { path: conf, changed: writeIfChanged(conf, Buffer.from(o.conflist), 0o644) },
  };
}

function validateConflist(text: string): void {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`conflist: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const c = v as { name?: unknown; plugins?: unknown } | null;
  if (!c || typeof c.name !== 'string' || !Array.isArray(c.plugins) || c.plugins.length === 0) {
    throw new Error('conflist: invalid: needs "name" and a non-empty "plugins" list');
  }
}

/** Atomic write (temp + fsync + rename) unless the file already holds exactly `data`. */
export function writeIfChanged(path: string, data: Buffer, mode: number): boolean {
  if (sameContent(path, data)) {
    if ((statSync(path).mode & 0o777) !== mode) chmodSync(path, mode);
    return false;
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      // write(2) may write less than asked (a disk filling up, a file-size limit): loop, so a
      // short copy is never renamed into place; the call that cannot write throws.
      for (let off = 0; off < data.length;) {
        const n = writeSync(fd, data, off, data.length - off);
        if (n <= 0) throw Object.assign(new Error(`${tmp}: write made no progress at byte ${off} of ${data.length}`), { code: 'EIO' });
        off += n;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  }
  return true;
}

function sameContent(path: string, data: Buffer): boolean {
  try {
    if (statSync(path).size !== data.length) return false;
    return readFileSync(path).equals(data);
  } catch {
    return false;
  }
}

export function parseInstallArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): InstallOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'bin-dir': { type: 'string' }, 'conf-dir': { type: 'string' }, 'conf-name': { type: 'string' },
      conflist: { type: 'string' }, 'network-name': { type: 'string' }, bridge: { type: 'string' },
      source: { type: 'string' }, help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const conflistFile = values.conflist ?? env['TWILL_CNI_CONFLIST'];
  const conflist = conflistFile
    ? readFileSync(conflistFile, 'utf8')
    : defaultConflist(values['network-name'] ?? env['TWILL_CNI_NETWORK_NAME'] ?? 'cbr0', values.bridge ?? env['TWILL_CNI_BRIDGE'] ?? 'cni0');
  const source = values.source ?? (process.versions['bun'] ? process.execPath : undefined);
  if (!source) throw new Error('--source: missing: under Node pass the twill executable to copy (the compiled binary copies itself)');
  return {
    binDir: values['bin-dir'] ?? env['TWILL_CNI_BIN_DIR'] ?? '/opt/cni/bin',
    confDir: values['conf-dir'] ?? env['TWILL_CNI_CONF_DIR'] ?? '/etc/cni/net.d',
    confName: values['conf-name'] ?? env['TWILL_CNI_CONF_NAME'] ?? '10-twill.conflist',
    source,
    conflist,
  };
}

export function installMain(argv: readonly string[]): number {
  try {
    const o = parseInstallArgs(argv, process.env);
    if (o === 'help') {
      writeSync(1, INSTALL_USAGE);
      return 0;
    }
    const r = install(o);
    writeSync(1, JSON.stringify({ msg: 'twill CNI installed', ...r }) + '\n');
    return 0;
  } catch (err) {
    writeSync(2, `twill install: ${(err as Error).message}\n\n${INSTALL_USAGE}`);
    return 1;
  }
}
