#!/usr/bin/env -S node --max-semi-space-size=4
// Entry point for `npx twilld` (and the image's ENTRYPOINT): runs the compiled agent (npm run
// build first).
//
// Memory: V8's young generation grows to two 16 MiB semi-spaces under the start-up burst and
// keeps them; --max-semi-space-size caps that, but only as a launch flag (v8.setFlagsFromString
// at run time does not resize it). At 20k peers, --max-semi-space-size=4 measured RSS
// 173–182 → 145 MiB at the same start→ready time (2: 132–160 MiB but 3–5 % idle CPU). So
// when the flag is missing, this file replaces itself once with `node <flag> <same args>`
// through execve(2) (koffi, already a dependency): same pid, so tini, signals and kubelet see
// one process; it costs one more node boot (≈85 ms with koffi). The shebang passes the flag
// itself (env -S, coreutils ≥ 8.30), so `twilld` / `npx twilld` and the image's ENTRYPOINT
// never pay that; only `node bin/twilld.js` does. TWILLD_NODE_FLAGS=keep skips the re-exec.
import { createRequire } from 'node:module';

const SEMI_SPACE_FLAG = '--max-semi-space-size=4';
const F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;

function reexecWithFlag() {
  if (process.env.TWILLD_NODE_FLAGS === 'keep') return;
  if (process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) return;
  const cmd = process.argv[2];
  if (cmd === 'status' || process.argv.includes('--help') || process.argv.includes('--version')) return;
  try {
    const koffi = createRequire(import.meta.url)('koffi');
    const libc = koffi.load('libc.so.6');
    const execve = libc.func('int execve(const char *path, const char **argv, const char **envp)');
    const fcntl = libc.func('int fcntl(int fd, int cmd, int arg)');
    // Node marks its stdio close-on-exec; without clearing that the new image would start
    // with stdin/stdout/stderr on /dev/null (and the agent's logs would vanish).
    for (const fd of [0, 1, 2]) {
      const flags = fcntl(fd, F_GETFD, 0);
      if (flags > 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    const argv = [process.execPath, ...process.execArgv, SEMI_SPACE_FLAG, ...process.argv.slice(1), null];
    const env = [...Object.entries(process.env).map(([k, v]) => `${k}=${v}`), null];
    execve(process.execPath, argv, env);   // returns only on failure
  } catch {
    // no koffi or no libc: run with V8's defaults
  }
}

reexecWithFlag();
import('../dist/agent/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('twilld: dist/agent/main.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
});
