// The IPAM store in host-local's on-disk layout, so a node moving from flannel + host-local keeps
// track of its running pods (and could move back):
//   <dataDir>/<network>/<ip>                 "<containerID>\r\n<ifname>" (older host-local: "<containerID>")
//   <dataDir>/<network>/last_reserved_ip.<N> the last address handed out from range set N
//   <dataDir>/<network>/lock                 flock(2)ed by every writer (see lock.ts)
// A reservation is written to a temp file and hard-linked to its address name: link(2) fails with
// EEXIST like O_EXCL, but the record appears complete or not at all, so a plugin killed mid-ADD
// never leaves an empty record that DEL cannot match. Callers hold the lock for every method.
import { O_CREAT, O_EXCL, O_WRONLY, pluginFs } from '../runtime/fs.js';
import { formatIp, tryParseIp, type IpAddr } from '../../lib/ip/addr.js';

export const LAST_IP_PREFIX = 'last_reserved_ip.';
export const TMP_PREFIX = '.twill-tmp-';

export interface Reservation {
  ip: IpAddr;
  file: string;          // the file name (canonical address)
  containerId: string;   // '' when the record cannot be decoded
  ifname: string;        // '' for host-local's pre-0.7 records (container ID only)
}

export class DiskStore {
  readonly dir: string;
  /**
   * Test only (TWILL_CNI_PAUSE_AT=ipam-temp, set by cmd/common.ts locked()): runs inside the
   * locked section, once a record's temp file is written and before it is linked into place.
   */
  onTempWritten: ((tmp: string) => void) | undefined;

  constructor(dataDir: string, network: string) {
    this.dir = join(dataDir, network);
  }

  ensureDir(): void {
    pluginFs().mkdirp(this.dir, 0o755);
  }

  get lockPath(): string {
    return join(this.dir, 'lock');
  }

  /** Every reservation file (names that parse as an IP address). */
  list(): Reservation[] {
    const out: Reservation[] = [];
    for (const name of this.names()) {
      const ip = tryParseIp(name);
      // A parsed IPv4 name is canonical already (no leading zeros, octets <= 255).
      if (!ip || (ip.family === 6 && formatIp(ip) !== name)) continue;
      out.push({ ip, file: name, ...decodeRecord(this.readRecord(name)) });
    }
    return out;
  }

  /** Addresses currently reserved (file names only; no reads). */
  reservedNames(): Set<string> {
    return new Set(this.names().filter((n) => tryParseIp(n) !== undefined));
  }

  /** Creates the record for `ip`; false if it already exists. */
  reserve(ip: IpAddr, containerId: string, ifname: string, rangeId: string): boolean {
    const name = formatIp(ip);
    const tmp = this.writeTemp(`${containerId.trim()}\r\n${ifname}`);
    try {
      this.onTempWritten?.(tmp);
      pluginFs().link(join(this.dir, tmp), join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      unlinkQuiet(join(this.dir, tmp));
    }
    this.writeLastReserved(rangeId, name);
    return true;
  }

  release(file: string): void {
    unlinkQuiet(join(this.dir, file));
  }

  /** Releases every record of (containerId, ifname); host-local's legacy ID-only records too. */
  releaseById(containerId: string, ifname: string): Reservation[] {
    const mine = this.list().filter((r) => matches(r, containerId, ifname));
    for (const r of mine) this.release(r.file);
    return mine;
  }

  /**
   * Releases the records of `names` (addresses from prevResult) that belong to (containerId,
   * ifname), reading only those files. Returns false when any of them is missing or belongs to
   * someone else, so the caller falls back to the full scan of releaseById.
   */
  releaseKnown(names: readonly string[], containerId: string, ifname: string): boolean {
    let all = true;
    for (const name of names) {
      const ip = tryParseIp(name);
      if (!ip) { all = false; continue; }
      const r: Reservation = { ip, file: name, ...decodeRecord(this.readRecord(name)) };
      if (matches(r, containerId, ifname)) this.release(name);
      else all = false;
    }
    return all && names.length > 0;
  }

  getById(containerId: string, ifname: string): Reservation[] {
    return this.list().filter((r) => matches(r, containerId, ifname));
  }

  lastReserved(rangeId: string): IpAddr | undefined {
    try {
      return tryParseIp(pluginFs().readFile(join(this.dir, LAST_IP_PREFIX + rangeId)).trim());
    } catch {
      return undefined;
    }
  }

  /** Removes temp files left by a writer that died (callers hold the lock, so none is live). */
  sweepTemps(): number {
    const stale = this.names().filter((n) => n.startsWith(TMP_PREFIX));
    for (const n of stale) unlinkQuiet(join(this.dir, n));
    return stale.length;
  }

  private names(): string[] {
    try {
      return pluginFs().readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  private readRecord(name: string): string {
    try {
      return pluginFs().readFile(join(this.dir, name));
    } catch {
      return '';
    }
  }

  private writeTemp(content: string): string {
    const name = `${TMP_PREFIX}${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const fs = pluginFs();
    const fd = fs.open(join(this.dir, name), O_WRONLY | O_CREAT | O_EXCL, 0o644);
    try {
      fs.write(fd, content);
    } finally {
      fs.close(fd);
    }
    return name;
  }

  private writeLastReserved(rangeId: string, ip: string): void {
    const tmp = this.writeTemp(ip);
    pluginFs().rename(join(this.dir, tmp), join(this.dir, LAST_IP_PREFIX + rangeId));
  }
}

export function decodeRecord(text: string): { containerId: string; ifname: string } {
  const t = text.trim();
  const nl = t.indexOf('\r\n');
  if (nl >= 0) return { containerId: t.slice(0, nl).trim(), ifname: t.slice(nl + 2).trim() };
  return { containerId: t, ifname: '' };
}

/** host-local's rule: exact (id, ifname), or a legacy record holding only the same id. */
export function matches(r: Reservation, containerId: string, ifname: string): boolean {
  if (r.containerId === '' || r.containerId !== containerId.trim()) return false;
  return r.ifname === ifname || r.ifname === '';
}

/** Path join for the store's own names (no node:path: see runtime/fs.ts for why imports matter). */
function join(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function unlinkQuiet(path: string): void {
  try {
    pluginFs().unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
