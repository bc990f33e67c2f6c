// The lease value in flannel's JSON shape (field names and null/omitted conventions as
// flannel's Go structs marshal them), so mixed or migrating clusters read each other:
//   {"PublicIP":"192.0.2.10","PublicIPv6":null,"BackendType":"vxlan",
//    "BackendData":{"VNI":1,"VtepMAC":"0a:58:…"},"BackendV6Data":{…}}   (V6 data omitted if none)
// flannel writes "0.0.0.0" for the IPv4 public IP of an IPv6-only node; we map it to "".
// Decoding checks structure and syntax (addresses parse, VNI is a 24-bit integer, VtepMAC is a
// 6-octet MAC) and returns a reason string on failure, for a LeaseEvent 'invalid'. Semantic
// checks against the cluster (subnet in the network, unicast public IP, multicast MAC, backend
// type) belong to the agent's peer validation, which can count each reason separately.
import type { Lease, LeaseAttrs } from '../subnet/types.js';
import { formatIp, tryParseIp } from '../ip/addr.js';
import { canonicalMac } from '../ip/mac.js';
import { decodeSubnetKey } from './key.js';

type BackendData = LeaseAttrs['backendData'];

export function encodeLeaseAttrs(a: LeaseAttrs): string {
  const doc: Record<string, unknown> = {
    PublicIP: a.publicIP || '0.0.0.0',
    PublicIPv6: a.publicIPv6 || null,
    BackendType: a.backendType,
    BackendData: { VNI: a.backendData.VNI, VtepMAC: a.backendData.VtepMAC },
  };
  if (a.backendV6Data) doc.BackendV6Data = { VNI: a.backendV6Data.VNI, VtepMAC: a.backendV6Data.VtepMAC };
  return JSON.stringify(doc);
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

function field(o: Record<string, unknown>, name: string): unknown {
  // Go's encoding/json matches names case-insensitively; so do we.
  if (name in o) return o[name];
  // Taken for every absent field too (flannel omits BackendV6Data), so lower-case `name` once.
  const want = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === want) return o[k];
  return undefined;
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
  // An IPv4 address parses only from its canonical text, so `v` is already formatIp(ip).
  return { ok: true, value: ip.family === 4 ? v : formatIp(ip) };
}

/** Decodes a stored lease value; `reason` says what is wrong (field and value) on failure. */
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

/** Decodes one stored entry (key + value) into a Lease, or the reason it is invalid. */
export function decodeLease(key: string, value: string, meta: { expiration: number | null | undefined; leaseId?: string; created?: number }): DecodeResult<Lease> {
  const pair = decodeSubnetKey(key);
  if (!pair) return fail(`key ${JSON.stringify(key)} is not a subnet key (want e.g. 10.244.3.0-24)`);
  const attrs = decodeLeaseAttrs(value);
  if (!attrs.ok) return attrs;
  const lease: Lease = { subnet: pair.subnet, attrs: attrs.value, expiration: meta.expiration, key };
  if (pair.ipv6Subnet) lease.ipv6Subnet = pair.ipv6Subnet;
  if (meta.leaseId !== undefined) lease.leaseId = meta.leaseId;
  if (meta.created !== undefined) lease.created = meta.created;
  return { ok: true, value: lease };
}

/** Whether two attribute sets are equal as stored (MAC case and null/absent ignored). */
export function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return encodeLeaseAttrs(a).toLowerCase() === encodeLeaseAttrs(b).toLowerCase();
}
