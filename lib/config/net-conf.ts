// net-conf.json → NetConf, with flannel's field names and defaults so an existing
// /coreos.com/network/config works unchanged:
//   SubnetLen      unset/0 → 24 when Network is /22 or larger, else Network prefix + 2
//                  (four subnets); a Network longer than /28 is too small. Explicit values
//                  must leave room for four subnets (≥ prefix + 2) and be ≤ 30.
//   IPv6SubnetLen  likewise with 64, /62, /124 and ≤ 126.
//   SubnetMin/Max  default to the second and the last subnet (the first is skipped: its
//                  network address equals the cluster network's); explicit ones must lie
//                  inside the network, sit on a SubnetLen boundary and keep Min ≤ Max.
//   EnableIPv4     defaults to true when Network is set (or when IPv6 is off), so an
//                  IPv6-only config needs no explicit "EnableIPv4": false.
//   Backend        Type "vxlan" only (default when absent; flannel's default "udp" is not
//                  supported), VNI 1, Port 8472 (0 means the default, as in flannel).
// Unknown keys are warned about, not fatal. Errors are CONFIG_INVALID and name field, value, rule.
import type { BackendConf, NetConf } from './types.js';
import { invalid } from '../errors.js';
import { formatIp, parseIp, type Family } from '../ip/addr.js';
import { contains, formatPrefix, hostMask, lastAddr, parsePrefix, type Prefix } from '../ip/prefix.js';
import { parseJsonDocument } from './json.js';
import { optBool, optInt, optString, readFields, type Fields, type WarnLogger } from './fields.js';

const TOP_KEYS = [
  'Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'EnableIPv4', 'EnableIPv6',
  'IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax', 'Backend',
] as const;
const BACKEND_KEYS = ['Type', 'VNI', 'Port', 'MTU', 'GBP', 'DirectRouting'] as const;

export const DEFAULT_VNI = 1;
export const DEFAULT_PORT = 8472;

interface FamilySpec {
  family: Family;
  net: string; len: string; min: string; max: string;
  example: string;
  defaultLen: number;   // 24 | 64
  bigEnough: number;    // network prefix ≤ this gets defaultLen
  maxLen: number;       // 30 | 126
}

const V4: FamilySpec = {
  family: 4, net: 'Network', len: 'SubnetLen', min: 'SubnetMin', max: 'SubnetMax',
  example: '10.244.0.0/16', defaultLen: 24, bigEnough: 22, maxLen: 30,
};
const V6: FamilySpec = {
  family: 6, net: 'IPv6Network', len: 'IPv6SubnetLen', min: 'IPv6SubnetMin', max: 'IPv6SubnetMax',
  example: 'fd00:10:244::/56', defaultLen: 64, bigEnough: 62, maxLen: 126,
};

interface FamilyConf { network: string; subnetLen: number; subnetMin: string; subnetMax: string }

function subnetLenFor(spec: FamilySpec, f: Fields, netLen: number, network: string): number {
  const bits = spec.family === 4 ? 32 : 128;
  const given = optInt(f, '', spec.len, 0, bits);
  if (given === undefined || given === 0) {
    if (netLen > spec.maxLen - 2) {
      throw invalid(spec.net, network, `too small: the prefix must be /${spec.maxLen - 2} or shorter to hold four subnets of at least four addresses`);
    }
    return netLen <= spec.bigEnough ? spec.defaultLen : netLen + 2;
  }
  if (given > spec.maxLen) throw invalid(spec.len, given, `must be at most ${spec.maxLen} (each subnet needs room for a gateway and pods)`);
  if (given < netLen + 2) {
    throw invalid(spec.len, given, `must be at least ${spec.net} prefix + 2 (${netLen + 2} for ${network}) so the network holds four subnets; the first one is not used`);
  }
  return given;
}

function boundary(spec: FamilySpec, f: Fields, which: 'min' | 'max', net: Prefix, len: number): bigint {
  const name = which === 'min' ? spec.min : spec.max;
  const size = 1n << BigInt((spec.family === 4 ? 32 : 128) - len);
  const text = optString(f, '', name, formatIp({ family: spec.family, value: net.addr + size }));
  if (text === undefined) return which === 'min' ? net.addr + size : lastAddr(net) - size + 1n;
  const ip = parseIp(text, name, spec.family);
  if (!contains(net, ip)) throw invalid(name, text, `must lie inside ${spec.net} ${formatPrefix(net)}`);
  if ((ip.value & hostMask(spec.family, len)) !== 0n) {
    throw invalid(name, text, `must be on a /${len} (${spec.len}) boundary, e.g. ${formatIp({ family: spec.family, value: ip.value & ~hostMask(spec.family, len) })}`);
  }
  return ip.value;
}

function familyConf(spec: FamilySpec, f: Fields, enableKey: string): FamilyConf {
  const text = optString(f, '', spec.net, spec.example);
  if (text === undefined) throw invalid(spec.net, f.get(spec.net), `is required when ${enableKey} is true (e.g. ${JSON.stringify(spec.example)})`);
  const net = parsePrefix(text, { field: spec.net, family: spec.family });
  const len = subnetLenFor(spec, f, net.len, text);
  const min = boundary(spec, f, 'min', net, len);
  const max = boundary(spec, f, 'max', net, len);
  const fmt = (v: bigint) => formatIp({ family: spec.family, value: v });
  if (min > max) throw invalid(spec.min, fmt(min), `must not be above ${spec.max} ${fmt(max)}`);
  return { network: formatPrefix(net), subnetLen: len, subnetMin: fmt(min), subnetMax: fmt(max) };
}

function parseBackend(v: unknown, log?: WarnLogger): BackendConf {
  const f = v === undefined || v === null ? new Map<string, unknown>() : readFields(v, BACKEND_KEYS, 'Backend', log);
  const type = optString(f, 'Backend', 'Type', 'vxlan') ?? 'vxlan';
  if (type !== 'vxlan') throw invalid('Backend.Type', type, 'only "vxlan" is supported');
  const mtu = optInt(f, 'Backend', 'MTU', 68, 65535);
  const port = optInt(f, 'Backend', 'Port', 0, 65535);
  return {
    type: 'vxlan',
    vni: optInt(f, 'Backend', 'VNI', 0, 16_777_215) ?? DEFAULT_VNI,
    port: port === undefined || port === 0 ? DEFAULT_PORT : port,
    ...(mtu === undefined ? {} : { mtu }),
    gbp: optBool(f, 'Backend', 'GBP') ?? false,
    directRouting: optBool(f, 'Backend', 'DirectRouting') ?? false,
  };
}

function warnIgnored(f: Fields, spec: FamilySpec, enableKey: string, log?: WarnLogger): void {
  for (const k of [spec.net, spec.len, spec.min, spec.max]) {
    if (f.get(k) !== undefined) log?.warn({ field: k }, `net-conf.json: ${k} is ignored because ${enableKey} is false`);
  }
}

/** Parses and validates net-conf.json (throws TwillError CONFIG_INVALID). */
export function parseNetConf(json: string, log?: WarnLogger): NetConf {
  const doc = parseJsonDocument(json, 'net-conf.json');
  const f = readFields(doc, TOP_KEYS, '', log);
  const backend = parseBackend(f.get('Backend'), log);
  const enableIPv6 = optBool(f, '', 'EnableIPv6') ?? false;
  const hasNetwork = optString(f, '', 'Network', V4.example) !== undefined;
  const enableIPv4 = optBool(f, '', 'EnableIPv4') ?? (hasNetwork || !enableIPv6);
  if (!enableIPv4 && !enableIPv6) throw invalid('EnableIPv4', false, 'at least one of EnableIPv4 and EnableIPv6 must be true');
  const v4 = enableIPv4 ? familyConf(V4, f, 'EnableIPv4') : undefined;
  const v6 = enableIPv6 ? familyConf(V6, f, 'EnableIPv6') : undefined;
  if (!v4) warnIgnored(f, V4, 'EnableIPv4', log);
  if (!v6) warnIgnored(f, V6, 'EnableIPv6', log);
  if (backend.mtu !== undefined && enableIPv6 && backend.mtu < 1280) {
    throw invalid('Backend.MTU', backend.mtu, 'must be at least 1280 when EnableIPv6 is true (IPv6 minimum MTU)');
  }
  return {
    enableIPv4,
    enableIPv6,
    ...(v4 ? { network: v4.network, subnetMin: v4.subnetMin, subnetMax: v4.subnetMax } : {}),
    subnetLen: v4?.subnetLen ?? 0,
    ...(v6 ? { ipv6Network: v6.network, ipv6SubnetMin: v6.subnetMin, ipv6SubnetMax: v6.subnetMax } : {}),
    ipv6SubnetLen: v6?.subnetLen ?? 64,
    backend,
    raw: json,
  };
}
