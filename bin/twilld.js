#!/usr/bin/env -S node --max-semi-space-size=4 --no-memory-reducer --compact-on-every-full-gc
// Entry point for `twilld` / `npx twilld` (and the image's ENTRYPOINT): runs the compiled agent
// (npm run build first).
//
// Memory: V8's young generation grows to two 16 MiB semi-spaces under the start-up burst and
// keeps them; --max-semi-space-size caps that, but only as a launch flag (v8.setFlagsFromString
// at run time does not resize it). At 20k peers, 4 measured RSS 173–182 → 145 MiB at the same
// start→ready time (2: 132–160 MiB but 3–5 % idle CPU; 8: 152–158 MiB). The shebang passes its
// flags (env -S, coreutils ≥ 8.30); `node bin/twilld.js` runs with V8's defaults.
//
// Returning memory after a burst is the agent's own job (agent/heap.ts: one full GC once it has
// been quiet 5 s), not V8's memory reducer's. The reducer starts its own full GCs (two or three,
// ≈25 ms each plus marking on helper threads at 20k peers) 8–16 s after any full GC — including
// the agent's — whenever allocation is low, so their timing was up to V8 and decided the idle
// figure: 0.23–0.90 % of a CPU over the benchmark's 30 s window in four runs. With it off and
// --compact-on-every-full-gc, the agent's one GC also evacuates fragmented pages and gives them
// back (committed heap 61 → 38.5 MB, what the reducer's GCs reached), and idle measured
// 0.10–0.17 % at the same RSS (95.0–96.8 MiB against 93.2–96.1 MiB with the reducer).
import('../dist/agent/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('twilld: dist/agent/main.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
});
