#!/usr/bin/env node
// Entry point for `npx twilld`: runs the compiled agent (npm run build first).
import('../dist/agent/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('twilld: dist/agent/main.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
});
