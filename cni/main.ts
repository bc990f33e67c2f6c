#!/usr/bin/env node
// The twill executable (`dist/cni/twill`, one bun-compiled file; also runs under Node):
//   - with CNI_COMMAND set it is the CNI plugin: env + stdin in, one JSON object out;
//   - `twill install ...` is the installer the DaemonSet's init container runs (install.ts);
//   - anything else prints what it is.
// Start-up is the plugin's whole cost for VERSION/DEL, so this file imports almost nothing:
// the kernel layer (koffi, netlink) loads only for commands that touch the kernel.
import { fstatSync, readFileSync, writeSync } from 'node:fs';
import { runCni } from './plugin.js';
import { flushTrace, mark } from './trace.js';
import { SUPPORTED_VERSIONS, TWILL_CNI_VERSION } from './skel/version.js';

async function main(argv: readonly string[]): Promise<number> {
  const sub = argv[0];
  if (sub === 'install') {
    const { installMain } = await import('./install.js');
    return installMain(argv.slice(1));
  }
  if (sub === '--version' || sub === 'version') {
    writeSync(1, `twill CNI plugin ${TWILL_CNI_VERSION} (CNI ${SUPPORTED_VERSIONS.join(', ')})\n`);
    return 0;
  }
  if (process.env['CNI_COMMAND'] === undefined) {
    writeSync(2, `twill CNI plugin ${TWILL_CNI_VERSION}: CNI spec versions ${SUPPORTED_VERSIONS.join(', ')}.\n` +
      'Run by a container runtime with CNI_COMMAND set, or `twill install --help`.\n');
    return sub === undefined ? 0 : 1;
  }
  mark('main');
  const stdin = readStdin();
  const out = await runCni(process.env, stdin, async () => {
    const k = await import('./kernel.js');
    mark('import');
    const deps = k.kernelDeps(process.env);
    mark('libc');
    return deps;
  });
  if (out.stdout) writeSync(1, out.stdout + '\n');
  mark('done');
  flushTrace();
  return out.code;
}

/** The config on stdin; never blocks on a terminal (node:tty costs ≈8 ms of start-up under bun). */
function readStdin(): string {
  try {
    if (fstatSync(0).isCharacterDevice()) return '';
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    writeSync(2, `twill: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
