// The CNI plugin → agent report of a new pod (agent/policy-socket.ts serves it,
// cni/policy-notify.ts sends it): one JSON line each way over a unix socket that sits beside the
// subnet file, so the plugin finds it from its own `subnetFile` setting.
import { isIP } from 'node:net';

/** The socket's file name, in the subnet file's directory. */
export const POLICY_SOCKET = 'policy.sock';

export interface PodReport { namespace: string; name: string; ips: string[] }
export interface PodReportReply { ok: boolean; ms?: number; error?: string }

/** A report as received, checked field by field (the error names the field, the value and the rule). */
export function parsePodReport(line: string): PodReport {
  let v: unknown;
  try { v = JSON.parse(line); } catch { throw new Error(`report: not JSON: ${JSON.stringify(line.slice(0, 80))}`); }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  for (const k of ['namespace', 'name'] as const) {
    if (typeof o[k] !== 'string' || o[k] === '') throw new Error(`report: ${k}: ${JSON.stringify(o[k])} is invalid: must be a non-empty string`);
  }
  const ips = o['ips'];
  if (!Array.isArray(ips) || ips.length === 0 || !ips.every((x) => typeof x === 'string' && isIP(x) !== 0)) {
    throw new Error(`report: ips: ${JSON.stringify(ips)} is invalid: must be a non-empty list of IP addresses`);
  }
  return { namespace: o['namespace'] as string, name: o['name'] as string, ips: ips as string[] };
}
