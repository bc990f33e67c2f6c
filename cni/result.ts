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
  const list = (key: string): unknown[] => {
    const v = raw[key];
    if (v === undefined || v === null) return [];
    return Array.isArray(v) ? v : fail(key, v, 'must be a list');
  };
  const interfaces = list('interfaces').map((x, i): IfaceResult => {
    const o = obj(x) ?? fail(`interfaces[${i}]`, x, 'must be an object');
    if (typeof o['name'] !== 'string') fail(`interfaces[${i}].name`, o['name'], 'must be a string');
    const out: IfaceResult = { name: o['name'] as string };
    if (typeof o['mac'] === 'string') out.mac = o['mac'];
    if (typeof o['sandbox'] === 'string') out.sandbox = o['sandbox'];
    if (typeof o['mtu'] === 'number') out.mtu = o['mtu'];
    return out;
  });
  const ips = list('ips').map((x, i): IpResult => {
    const o = obj(x) ?? fail(`ips[${i}]`, x, 'must be an object');
    if (typeof o['address'] !== 'string' || !tryParseCidr(o['address'])) fail(`ips[${i}].address`, o['address'], 'must be an address/prefix');
    const out: IpResult = { address: o['address'] as string };
    if (o['gateway'] !== undefined) {
      if (typeof o['gateway'] !== 'string' || !tryParseIp(o['gateway'])) fail(`ips[${i}].gateway`, o['gateway'], 'must be an IP address');
      out.gateway = o['gateway'] as string;
    }
    if (o['interface'] !== undefined) {
      const n = o['interface'];
      if (!Number.isInteger(n) || (n as number) < 0 || (n as number) >= interfaces.length) fail(`ips[${i}].interface`, n, 'must index interfaces');
      out.interface = n as number;
    }
    return out;
  });
  const routes = list('routes').map((x, i): RouteResult => {
    const o = obj(x) ?? fail(`routes[${i}]`, x, 'must be an object');
    if (typeof o['dst'] !== 'string' || !tryParseCidr(o['dst'])) fail(`routes[${i}].dst`, o['dst'], 'must be a prefix');
    const out: RouteResult = { dst: o['dst'] as string };
    if (o['gw'] !== undefined) {
      if (typeof o['gw'] !== 'string' || !tryParseIp(o['gw'])) fail(`routes[${i}].gw`, o['gw'], 'must be an IP address');
      out.gw = o['gw'] as string;
    }
    return out;
  });
  return { interfaces, ips, routes, dns: (obj(raw['dns']) ?? {}) as DnsConf };
}

function obj(x: unknown): Record<string, unknown> | undefined {
  return x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined;
}
