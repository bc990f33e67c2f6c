// One deterministic [0,1) source for the tests that randomise (fuzzers, uniformity checks):
// mulberry32 — 32-bit state, full period, good enough low bits for `Math.floor(r() * n)` — so
// the seed a test names reproduces its run exactly.

/** A seeded replacement for Math.random (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
