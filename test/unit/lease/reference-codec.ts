// Test-only reference: verbatim copies of the subnet-key and lease-value decoders as they were
// before the per-lease cost work (lib/lease/key.ts, codec.ts), on top of the reference address
// parsers. The differential test compares them with the live decoders; keep them unchanged.
import type { Lease, LeaseAttrs } from '../../../lib/subnet/types.js';
import { canonicalMac, formatIp, formatPrefix, tryParseIp, tryParsePrefix } from '../ip/reference-parsers.js';

export interface SubnetPair {
  subnet: string;
  ipv6Subnet?: string;
}

function decodePart(s: string, family: 4 | 6): string | undefined {
  const dash = s.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const p = tryParsePrefix(`${s.slice(0, dash)}/${s.slice(dash + 1)}`, { family });
  return p && formatPrefix(p);
}

export function decodeSubnetKey(key: string): SubnetPair | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const amp = name.indexOf('&');
  if (amp >= 0) {
    const subnet = decodePart(name.slice(0, amp), 4);
    const ipv6Subnet = decodePart(name.slice(amp + 1), 6);
    return subnet && ipv6Subnet ? { subnet, ipv6Subnet } : undefined;
  }
  const v4 = decodePart(name, 4);
  if (v4) return { subnet: v4 };
  const v6 = decodePart(name, 6);
  return v6 ? { subnet: '', ipv6Subnet: v6 } : undefined;
}

type BackendData = LeaseAttrs['backendData'];

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

function field(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name];
  const k = Object.keys(o).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : o[k];
}

function decodeBackendData(v: unknown, name: string): DecodeResult<BackendData> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(`${name} must be an object with VNI and VtepMAC, got ${JSON.stringify(v) ?? 'nothing'}`);
  const o = v as Record<string, unknown>;
  const vni = field(o, 'VNI');
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 16_777_215) return fail(`${name}.VNI ${JSON.stringify(vni) ?? 'missing'} is not an integer 0..16777215`);
  const mac = field(o, 'VtepMAC');
  const canon = typeof mac === 'string' ? canonicalMac(mac) : undefined;
  if (!canon) return fail(`${name}.VtepMAC ${JSON.stringify(mac) ?? 'missing'} is not a MAC address`);
  return { ok: true, value: { VNI: vni, VtepMAC: canon } };
}

function decodeIp(v: unknown, name: string, family: 4 | 6): DecodeResult<string> {
  if (typeof v !== 'string') return fail(`${name} ${JSON.stringify(v) ?? 'missing'} is not an IPv${family} address string`);
  const ip = tryParseIp(v);
  if (!ip || ip.family !== family) return fail(`${name} ${JSON.stringify(v)} is not an IPv${family} address`);
  return { ok: true, value: formatIp(ip) };
}

export function decodeLeaseAttrs(json: string): DecodeResult<LeaseAttrs> {
  let doc: unknown;
  try { doc = JSON.parse(json); } catch (e) { return fail(`value is not JSON: ${(e as Error).message}`); }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return fail(`value must be a JSON object, got ${json.slice(0, 40)}`);
  const o = doc as Record<string, unknown>;
  const v6raw = field(o, 'PublicIPv6');
  const v6 = v6raw === null || v6raw === undefined || v6raw === '' ? undefined : decodeIp(v6raw, 'PublicIPv6', 6);
  if (v6 && !v6.ok) return v6;
  const v4raw = field(o, 'PublicIP');
  const v4 = (v4raw === '0.0.0.0' || v4raw === '' || v4raw === undefined) && v6 ? { ok: true as const, value: '' } : decodeIp(v4raw, 'PublicIP', 4);
  if (!v4.ok) return v4;
  const bt = field(o, 'BackendType');
  if (typeof bt !== 'string' || bt === '') return fail(`BackendType ${JSON.stringify(bt) ?? 'missing'} is not a backend name`);
  const bd = decodeBackendData(field(o, 'BackendData'), 'BackendData');
  if (!bd.ok) return bd;
  const bd6raw = field(o, 'BackendV6Data');
  const bd6 = bd6raw === null || bd6raw === undefined ? undefined : decodeBackendData(bd6raw, 'BackendV6Data');
  if (bd6 && !bd6.ok) return bd6;
  return {
    ok: true,
    value: {
      publicIP: v4.value,
      publicIPv6: v6 ? v6.value : null,
      backendType: bt,
      backendData: bd.value,
      backendV6Data: bd6 ? bd6.value : null,
    },
  };
}

export function decodeLease(key: string, value: string, meta: { expiration: number | null; leaseId?: string }): DecodeResult<Lease> {
  const pair = decodeSubnetKey(key);
  if (!pair) return fail(`key ${JSON.stringify(key)} is not a subnet key (want e.g. 10.244.3.0-24)`);
  const attrs = decodeLeaseAttrs(value);
  if (!attrs.ok) return attrs;
  const lease: Lease = { subnet: pair.subnet, attrs: attrs.value, expiration: meta.expiration, key };
  if (pair.ipv6Subnet) lease.ipv6Subnet = pair.ipv6Subnet;
  if (meta.leaseId !== undefined) lease.leaseId = meta.leaseId;
  return { ok: true, value: lease };
}
