// The ADD result in one internal shape (CNI 1.1), rendered for the version the runtime asked
// for: 0.3.x/0.4.0 carry `version` in each IP, 1.x drops it; only 1.1 knows interface `mtu`.
// prevResult (CHECK, DEL) is read back tolerantly from any of those shapes.
import { CniError, CNI_ERR } from './skel/errors.js';
import { atLeast, safeJson } from './skel/version.js';
import { tryParseIp } from '../lib/ip/addr.js';
import { tryParseCidr } from '../lib/ip/cidr.js';
import type { DnsConf } from './config.js';

export interface IfaceResult {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface IpResult {
  address: string;      // "10.244.1.5/24"
  gateway?: string;
  interface?: number;   // index into interfaces
}

export interface RouteResult {
  dst: string;
  gw?: string;
}

export interface Result {
  interfaces: IfaceResult[];
  ips: IpResult[];
  routes: RouteResult[];
  dns: DnsConf;
}

export function renderResult(r: Result, cniVersion: string): Record<string, unknown> {
  const v1 = atLeast(cniVersion, '1.0.0');
  const v11 = atLeast(cniVersion, '1.1.0');
  const interfaces = r.interfaces.map((i) => {
    const o: Record<string, unknown> = { name: i.name };
    if (i.mac !== undefined) o['mac'] = i.mac;
    if (v11 && i.mtu !== undefined) o['mtu'] = i.mtu;
    if (i.sandbox !== undefined) o['sandbox'] = i.sandbox;
    return o;
  });
  const ips = r.ips.map((ip) => {
    const o: Record<string, unknown> = {};
    if (!v1) o['version'] = tryParseCidr(ip.address)?.family === 6 ? '6' : '4';
    o['address'] = ip.address;
    if (ip.gateway !== undefined) o['gateway'] = ip.gateway;
    if (ip.interface !== undefined) o['interface'] = ip.interface;
    return o;
  });
  return { cniVersion, interfaces, ips, routes: r.routes.map((x) => ({ ...x })), dns: { ...r.dns } };
}

/** Reads a prevResult of any supported version; code 7 naming the field when malformed. */
export function parsePrevResult(raw: Record<string, unknown>): Result {
  const fail = (field: string, value: unknown, rule: string): never => {
    throw new CniError(CNI_ERR.invalidConfig, `prevResult.${field}: ${safeJson(value)} is invalid: ${rule}`);
  };
  /** Each element of the list raw[key] (absent or null: none) as an object, with its path. */
  const each = <T>(key: string, read: (o: Record<string, unknown>, at: string) => T): T[] => {
    const v = raw[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return fail(key, v, 'must be a list');
    return v.map((x: unknown, i) => read(obj(x) ?? fail(`${key}[${i}]`, x, 'must be an object'), `${key}[${i}]`));
  };
  const cidr = (o: Record<string, unknown>, at: string, key: string, rule: string): string => {
    const v = o[key];
    return typeof v === 'string' && tryParseCidr(v) ? v : fail(`${at}.${key}`, v, rule);
  };
  const optionalIp = (o: Record<string, unknown>, at: string, key: string): string | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    return typeof v === 'string' && tryParseIp(v) ? v : fail(`${at}.${key}`, v, 'must be an IP address');
  };
  const interfaces = each('interfaces', (o, at): IfaceResult => {
    if (typeof o['name'] !== 'string') fail(`${at}.name`, o['name'], 'must be a string');
    const out: IfaceResult = { name: o['name'] as string };
    if (typeof o['mac'] === 'string') out.mac = o['mac'];
    if (typeof o['sandbox'] === 'string') out.sandbox = o['sandbox'];
    if (typeof o['mtu'] === 'number') out.mtu = o['mtu'];
    return out;
  });
  const ips = each('ips', (o, at): IpResult => {
    const out: IpResult = { address: cidr(o, at, 'address', 'must be an address/prefix') };
    const gateway = optionalIp(o, at, 'gateway');
    if (gateway !== undefined) out.gateway = gateway;
    if (o['interface'] !== undefined) {
      const n = o['interface'];
      if (!Number.isInteger(n) || (n as number) < 0 || (n as number) >= interfaces.length) fail(`${at}.interface`, n, 'must index interfaces');
      out.interface = n as number;
    }
    return out;
  });
  const routes = each('routes', (o, at): RouteResult => {
    const out: RouteResult = { dst: cidr(o, at, 'dst', 'must be a prefix') };
    const gw = optionalIp(o, at, 'gw');
    if (gw !== undefined) out.gw = gw;
    return out;
  });
  return { interfaces, ips, routes, dns: (obj(raw['dns']) ?? {}) as DnsConf };
}

function obj(x: unknown): Record<string, unknown> | undefined {
  return x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined;
}
