// The network configuration the runtime streams on stdin, decoded and validated once. Unknown
// keys are ignored (the spec lets runtimes add their own); known keys with a wrong type or value
// fail with code 7 naming the key, the value and the rule, so a typo in a conflist is obvious.
import { CniError, CNI_ERR } from './skel/errors.js';
import { negotiateVersion, safeJson, type CniVersion } from './skel/version.js';
import { validateIfname } from './skel/env.js';

export interface DnsConf {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface PluginConf {
  cniVersion: CniVersion;
  name: string;
  bridge: string;
  subnetFile: string;
  dataDir: string;
  mtu: number | undefined;
  hairpinMode: boolean;
  isDefaultGateway: boolean;
  dns: DnsConf | undefined;
  prevResult: Record<string, unknown> | undefined;
  validAttachments: Attachment[] | undefined;
}

export const DEFAULTS = {
  bridge: 'cni0',
  subnetFile: '/run/twill/subnet.env',
  dataDir: '/var/lib/cni/networks',
  hairpinMode: true,
  isDefaultGateway: true,
} as const;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Decodes stdin JSON into an object (code 6 when it is not a JSON object). */
export function decodeStdin(stdin: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI_ERR.decode, `network configuration on stdin is not valid JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CniError(CNI_ERR.decode, `network configuration on stdin: ${safeJson(raw)} is invalid: must be a JSON object`);
  }
  return raw as Record<string, unknown>;
}

export function parseConf(raw: Record<string, unknown>): PluginConf {
  const cniVersion = negotiateVersion(raw['cniVersion'], raw['cniVersions']);
  if (raw['ipam'] !== undefined) {
    throw new CniError(CNI_ERR.unsupportedField, 'ipam: is unsupported: twill allocates addresses from the node subnet itself; remove the "ipam" section');
  }
  const name = raw['name'];
  if (typeof name !== 'string' || name.length > 200 || !NAME_RE.test(name)) {
    throw bad('name', name, 'must start with a letter or digit followed by letters, digits, "_", "." or "-"');
  }
  const bridge = str(raw, 'bridge', DEFAULTS.bridge);
  try { validateIfname(bridge); } catch (err) { throw bad('bridge', bridge, (err as Error).message.replace(/^.*is invalid: /, '')); }
  const mtuRaw = raw['mtu'];
  if (mtuRaw !== undefined && (!Number.isInteger(mtuRaw) || (mtuRaw as number) < 68 || (mtuRaw as number) > 65535)) {
    throw bad('mtu', mtuRaw, 'must be an integer between 68 and 65535');
  }
  const type = raw['type'];
  if (type !== undefined && typeof type !== 'string') throw bad('type', type, 'must be a string');
  return {
    cniVersion,
    name,
    bridge,
    subnetFile: absPath(raw, 'subnetFile', DEFAULTS.subnetFile),
    dataDir: absPath(raw, 'dataDir', DEFAULTS.dataDir),
    mtu: mtuRaw as number | undefined,
    hairpinMode: bool(raw, 'hairpinMode', DEFAULTS.hairpinMode),
    isDefaultGateway: bool(raw, 'isDefaultGateway', DEFAULTS.isDefaultGateway),
    dns: parseDns(raw['dns']),
    prevResult: objOrUndef(raw, 'prevResult'),
    validAttachments: parseAttachments(raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments']),
  };
}

function bad(field: string, value: unknown, rule: string): CniError {
  return new CniError(CNI_ERR.invalidConfig, `${field}: ${safeJson(value)} is invalid: ${rule}`);
}

function str(raw: Record<string, unknown>, key: string, def: string): string {
  const v = raw[key];
  if (v === undefined) return def;
  if (typeof v !== 'string' || v === '') throw bad(key, v, 'must be a non-empty string');
  return v;
}

function absPath(raw: Record<string, unknown>, key: string, def: string): string {
  const v = str(raw, key, def);
  if (!v.startsWith('/') || v.includes('\0') || v.split('/').includes('..')) throw bad(key, v, 'must be an absolute path without ".."');
  return v;
}

function bool(raw: Record<string, unknown>, key: string, def: boolean): boolean {
  const v = raw[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw bad(key, v, 'must be true or false');
  return v;
}

function objOrUndef(raw: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(key, v, 'must be an object');
  return v as Record<string, unknown>;
}

function strList(v: unknown, field: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(field, v, 'must be a list of strings');
  return v as string[];
}

function parseDns(v: unknown): DnsConf | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad('dns', v, 'must be an object');
  const d = v as Record<string, unknown>;
  if (d['domain'] !== undefined && typeof d['domain'] !== 'string') throw bad('dns.domain', d['domain'], 'must be a string');
  const out: DnsConf = {};
  const ns = strList(d['nameservers'], 'dns.nameservers');
  const search = strList(d['search'], 'dns.search');
  const options = strList(d['options'], 'dns.options');
  if (ns) out.nameservers = ns;
  if (typeof d['domain'] === 'string') out.domain = d['domain'];
  if (search) out.search = search;
  if (options) out.options = options;
  return out;
}

function parseAttachments(v: unknown): Attachment[] | undefined {
  if (v === undefined) return undefined;
  const rule = 'must be a list of {"containerID": string, "ifname": string}';
  if (!Array.isArray(v)) throw bad('cni.dev/valid-attachments', v, rule);
  return v.map((a, i) => {
    const o = a as Record<string, unknown> | null;
    if (o === null || typeof o !== 'object' || typeof o['containerID'] !== 'string' || typeof o['ifname'] !== 'string') {
      throw bad(`cni.dev/valid-attachments[${i}]`, a, rule);
    }
    return { containerId: o['containerID'], ifname: o['ifname'] };
  });
}
