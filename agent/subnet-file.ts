// /run/twill/subnet.env: the de-facto interface other CNI tooling reads (flannel's variable
// names). Written atomically (temp + rename) and only when its contents change.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatIp } from '../lib/ip/addr.js';
import { firstHost, formatPrefix, tryParsePrefix, type Prefix } from '../lib/ip/prefix.js';

export interface SubnetEnv {
  network?: Prefix;
  subnet?: Prefix;
  ipv6Network?: Prefix;
  ipv6Subnet?: Prefix;
  mtu: number;
  ipMasq: boolean;
}

export function renderSubnetEnv(e: SubnetEnv): string {
  const lines: string[] = [];
  if (e.network) lines.push(`FLANNEL_NETWORK=${formatPrefix(e.network)}`);
  if (e.subnet) lines.push(`FLANNEL_SUBNET=${formatIp(firstHost(e.subnet))}/${e.subnet.len}`);
  if (e.ipv6Network) lines.push(`FLANNEL_IPV6_NETWORK=${formatPrefix(e.ipv6Network)}`);
  if (e.ipv6Subnet) lines.push(`FLANNEL_IPV6_SUBNET=${formatIp(firstHost(e.ipv6Subnet))}/${e.ipv6Subnet.len}`);
  lines.push(`FLANNEL_MTU=${e.mtu}`, `FLANNEL_IPMASQ=${e.ipMasq}`);
  return lines.join('\n') + '\n';
}

/** Writes the file if its contents differ. Returns whether it wrote. */
export async function writeSubnetFile(path: string, e: SubnetEnv): Promise<boolean> {
  const text = renderSubnetEnv(e);
  const cur = await readFile(path, 'utf8').catch(() => undefined);
  if (cur === text) return false;
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
  return true;
}

/** The subnet (network form, "10.244.3.0/24") recorded in a previous subnet file, if any. */
export async function readPreviousSubnet(path: string): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  const m = text && /^FLANNEL_SUBNET=(\S+)\s*$/m.exec(text);
  const p = m ? tryParsePrefix(m[1]!, { family: 4, normalize: true }) : undefined;
  return p && formatPrefix(p);
}
