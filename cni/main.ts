#!/usr/bin/env node
// The twill executable (`dist/cni/twill`, one bun-compiled file; also runs under Node):
//   - with CNI_COMMAND set it is the CNI plugin: env + stdin in, one JSON object out;
//   - `twill install ...` is the installer the DaemonSet's init container runs (install.ts);
//   - anything else prints what it is.
// Start-up is the plugin's whole cost for VERSION/DEL, so this file imports almost nothing:
// the kernel layer (koffi, netlink) loads only for commands that touch the kernel, and file I/O
// goes through sys/fs.ts (libc in the compiled executable: node:fs alone costs ≈0.8 ms there).
import { pluginFs } from './sys/fs.js';
import { runCni } from './plugin.js';
import { cniProcess, exitWith } from './cli.js';
import { SUPPORTED_VERSIONS, TWILL_CNI_VERSION } from './skel/version.js';

async function main(argv: readonly string[]): Promise<number> {
  const sub = argv[0];
  if (sub === 'install') {
    const { installMain } = await import('./install.js');
    return installMain(argv.slice(1));
  }
  if (sub === '--version' || sub === 'version') {
    pluginFs().write(1, `twill CNI plugin ${TWILL_CNI_VERSION} (CNI ${SUPPORTED_VERSIONS.join(', ')})\n`);
    return 0;
  }
  if (process.env['CNI_COMMAND'] === undefined) {
    pluginFs().write(2, `twill CNI plugin ${TWILL_CNI_VERSION}: CNI spec versions ${SUPPORTED_VERSIONS.join(', ')}.\n` +
      'Run by a container runtime with CNI_COMMAND set, or `twill install --help`.\n');
    return sub === undefined ? 0 : 1;
  }
  return cniProcess(runCni);
}

exitWith(main(process.argv.slice(2)));
