// FNV-1a 64-bit, for deterministic interface names and MACs. Not node:crypto on purpose: in the
// bun-compiled plugin importing node:crypto alone costs ≈5 ms of start-up (measured), more than
// the whole netlink work of a DEL; these names need determinism, not collision resistance
// against an adversary (container IDs come from the runtime).

const PRIME_LO = 0x1b3;       // FNV 64-bit prime = 2^40 + 2^8 + 0xb3
const OFFSET_HI = 0xcbf29ce4;
const OFFSET_LO = 0x84222325;

/** 16 lowercase hex characters. */
export function fnv1a64Hex(s: string): string {
  let hi = OFFSET_HI;
  let lo = OFFSET_LO;
  const bytes = Buffer.from(s, 'utf8');
  for (const b of bytes) {
    lo = (lo ^ b) >>> 0;
    // (hi:lo) * prime mod 2^64, with prime = 2^40 + 0x1b3
    const loMul = lo * PRIME_LO;                       // < 2^41, exact in a double
    const carry = Math.floor(loMul / 0x1_0000_0000);
    const newLo = loMul >>> 0;
    const newHi = (Math.imul(hi, PRIME_LO) + carry + ((lo << 8) >>> 0)) >>> 0;   // + lo * 2^40 (hi word gets lo << 8)
    hi = newHi;
    lo = newLo;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}
