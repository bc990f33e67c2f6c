#!/usr/bin/env -S node --max-semi-space-size=4
// Entry point for `twilld` / `npx twilld` (and the image's ENTRYPOINT): runs the compiled agent
// (npm run build first).
//
// Memory: V8's young generation grows to two 16 MiB semi-spaces under the start-up burst and
// keeps them; --max-semi-space-size caps that, but only as a launch flag (v8.setFlagsFromString
// at run time does not resize it). At 20k peers, 4 measured RSS 173–182 → 145 MiB at the same
// start→ready time (2: 132–160 MiB but 3–5 % idle CPU; 8: 152–158 MiB). The shebang passes it
// (env -S, coreutils ≥ 8.30); `node bin/twilld.js` runs with V8's defaults.
//
// V8's memory reducer stays on: after a burst it runs a few full GCs over the next ≈30 s that
// return memory to the OS. With the compact peer state (20k peers: ≈43 MB live heap) that costs
// 0.17–0.20 % CPU in the benchmark's idle window and keeps RSS at ≈111 MiB; --no-memory-reducer
// measured 0.13 % but ≈140 MiB (and 0.90 % CPU vs 0.13 % with the older, 61 MB heap).
import('../dist/agent/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('twilld: dist/agent/main.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
});
