#!/usr/bin/env -S node --max-semi-space-size=4 --no-memory-reducer
// Entry point for `twilld` / `npx twilld` (and the image's ENTRYPOINT): runs the compiled agent
// (npm run build first).
//
// Memory: V8's young generation grows to two 16 MiB semi-spaces under the start-up burst and
// keeps them; --max-semi-space-size caps that, but only as a launch flag (v8.setFlagsFromString
// at run time does not resize it). At 20k peers, 4 measured RSS 173–182 → 145 MiB at the same
// start→ready time (2: 132–160 MiB but 3–5 % idle CPU; 8: 152–158 MiB). The shebang passes it
// (env -S, coreutils ≥ 8.30); `node bin/twilld.js` runs with V8's defaults.
//
// Idle CPU: after a burst of activity V8's memory reducer runs several full GCs spread over the
// next ≈30 s, on helper threads (so a CPU profile of the main thread shows it idle); at 20k
// peers that was ≈0.3 s of CPU, 0.90 % in the benchmark's idle window 20 s after 200 lease
// events. The agent already compacts its heap itself once quiet (agent/heap.ts), so
// --no-memory-reducer drops the duplicate work: 0.13 % in the same window.
import('../dist/agent/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('twilld: dist/agent/main.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
});
