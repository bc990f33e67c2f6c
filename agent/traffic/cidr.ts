// Spec validation for the traffic rules. Prefixes are canonicalised (network address, compressed
// IPv6) because nft and iptables-save print them that way, and check() compares text.
import { invalid } from '../../lib/errors.js';
import { tryParseIp, type Family } from '../../lib/ip/addr.js';
import { formatPrefix, tryParsePrefix } from '../../lib/ip/prefix.js';

export type { Family };

export interface Cidr { family: Family; text: string }

/** Parses `addr/len` of the given family; host bits must be zero. Text in lib/ip's RFC 5952 form, as nft prints it. */
export function parseCidr(field: string, value: string, family: Family): Cidr {
  const slash = value.indexOf('/');
  const ip = slash > 0 ? tryParseIp(value.slice(0, slash)) : undefined;
  const p = tryParsePrefix(value, { family, normalize: true });
  if (!p || !ip || ip.family !== family || (family === 6 && value.includes('.'))) {
    throw invalid(field, value, `must be an IPv${family} prefix such as ${family === 4 ? '10.244.0.0/16' : 'fd00:10::/56'}`);
  }
  if (ip.value !== p.addr) throw invalid(field, value, 'host bits must be zero (use the network address)');
  return { family, text: formatPrefix(p) };
}
