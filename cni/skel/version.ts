// Spec-version negotiation. The runtime tells us the version it speaks in `cniVersion` (or, from
// CNI 1.1 on, a list in `cniVersions`); the answer must be shaped for exactly that version, so
// the version is resolved once, before anything else, and travels with the request.
import { CniError, CNI_ERR } from './errors.js';

/** The plugin's own release (not a CNI spec version). */
export const TWILL_CNI_VERSION = '0.1.0';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

const VERSION_RE = /^(\d{1,4})\.(\d{1,4})\.(\d{1,4})$/;

/** Parses "1.0.0" into a comparable triple; undefined when malformed. */
export function parseVersion(v: unknown): [number, number, number] | undefined {
  if (typeof v !== 'string') return undefined;
  const m = VERSION_RE.exec(v);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a) ?? [0, 0, 0];
  const pb = parseVersion(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    const d = pa[i]! - pb[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupported(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Whether `v` is at least `min` (both well-formed). */
export function atLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/**
 * Picks the version to speak: `cniVersion` when given (it must be one we support); else the
 * highest entry of `cniVersions` we support. Neither → error code 1 naming what we support.
 */
export function negotiateVersion(cniVersion: unknown, cniVersions: unknown): CniVersion {
  const supported = SUPPORTED_VERSIONS.join(', ');
  if (cniVersion !== undefined) {
    if (isSupported(cniVersion)) return cniVersion;
    throw new CniError(CNI_ERR.incompatibleVersion,
      `cniVersion: ${JSON.stringify(cniVersion)} is not supported: supported versions are ${supported}`);
  }
  if (cniVersions !== undefined) {
    if (!Array.isArray(cniVersions) || cniVersions.some((v) => typeof v !== 'string')) {
      throw new CniError(CNI_ERR.invalidConfig, `cniVersions: ${safeJson(cniVersions)} is invalid: must be a list of version strings`);
    }
    const common = cniVersions.filter(isSupported).sort(compareVersions);
    const best = common[common.length - 1];
    if (best) return best;
    throw new CniError(CNI_ERR.incompatibleVersion,
      `cniVersions: ${safeJson(cniVersions)} has no version in common with the plugin: supported versions are ${supported}`);
  }
  throw new CniError(CNI_ERR.incompatibleVersion, `cniVersion: missing: the network configuration must name a version (supported: ${supported})`);
}

/** The VERSION command's answer. */
export function versionResult(cniVersion: string): Record<string, unknown> {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}

export function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(v);
  }
}
