#!/usr/bin/env node
// The twill executable (`dist/cni/twill`, one bun-compiled file; also runs under Node), the
// plugin's one entry:
//   - with CNI_COMMAND set it is the CNI plugin: env + stdin in, one JSON object out (plugin.ts,
//     every command of cmd/index.ts; the compiled executable serves ADD, DEL and VERSION from a
//     smaller bundle of the same code, see runtime/bun.ts);
//   - `twill install ...` is the installer the DaemonSet's init container runs (install.ts);
//   - anything else prints what it is.
import { pluginFs } from './runtime/fs.js';
import { cniProcess, exitWith } from './plugin.js';
import { COMMANDS } from './cmd/index.js';
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
  return cniProcess(COMMANDS);
}

exitWith(main(process.argv.slice(2)));
