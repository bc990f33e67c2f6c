// cni/runtime/ — start-up speed machinery of the bun-compiled executable (docs/cni.md,
// "Packaging"). A CNI call is a fresh process, so start-up is most of an ADD or DEL; what lives
// here exists only to make it cheap, never to change what a call does (the plugin itself is
// cni/main.ts, plugin.ts and cmd/):
//   bun.ts         the executable's two entries (scripts/build-cni.sh): bind libc, then run a
//                  call from the small bundle (HOT_COMMANDS of cmd/index.ts) or the full one;
//   ffi-adapter.ts libc through the runtime's FFI natives, koffi's surface for lib/netlink/ffi.ts;
//   prototype.ts   C prototypes -> FFI signatures (parsed at build time);
//   fs.ts          the plugin's file I/O: node:fs under Node, libc-fs.ts in the executable;
//   trace.ts       TWILL_CNI_TRACE=1, where a call's time goes.
import { getLibc, useKoffi } from '../../lib/netlink/ffi.js';
import { HOT_COMMANDS } from '../cmd/index.js';
import { bunKoffi, type Signatures } from './ffi-adapter.js';
import { usePluginFs } from './fs.js';
import { libcFs } from './libc-fs.js';

/** Hands lib/netlink/ffi.ts and fs.ts the libc bindings (each bundle has its own copy of both). */
function bindLibc(signatures: Signatures): void {
  const k = bunKoffi(signatures);
  useKoffi(k);
  usePluginFs(libcFs(k, getLibc));
}

/**
 * The small bundle: ADD, DEL and VERSION as a runtime calls them (no arguments), without CHECK,
 * GC, STATUS and the installer — the executable loads its bundle's bytecode on every start, so
 * code a call never runs still costs it. Anything else runs main.ts from the full bundle, which
 * it imports by a name the bundler cannot follow.
 */
export function startHot(signatures: Signatures): void {
  bindLibc(signatures);
  const cmd = process.env['CNI_COMMAND'];
  if (process.argv[2] === undefined && cmd !== undefined && (cmd === 'VERSION' || Object.hasOwn(HOT_COMMANDS, cmd))) {
    void import('../plugin.js').then(({ cniProcess, exitWith }) => exitWith(cniProcess(HOT_COMMANDS)));
  } else void import(['./full', 'js'].join('.'));
}

export function startFull(signatures: Signatures): void {
  bindLibc(signatures);
  void import('../main.js');
}
