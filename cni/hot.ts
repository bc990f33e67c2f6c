// The compiled executable's entry for ADD and DEL, the calls a node makes by the thousand (and
// VERSION, which needs no command): the same shell (cli.ts) and dispatch (dispatch.ts) as
// main.ts, bundled without the other commands and the installer. The executable loads its
// whole bundle's bytecode on every start, so code a call never runs still costs it: a DEL from
// this bundle took ≈45–70 fewer page faults and ≈0.3 ms less CPU than from the full one
// (measured). scripts/build-cni.sh routes a call here when CNI_COMMAND is ADD, DEL or VERSION
// and no subcommand is given; everything else (CHECK, GC, STATUS, `twill install`,
// `--version`) runs main.ts from the executable's second bundle.
import { cniProcess, exitWith } from './cli.js';
import { runCniWith } from './dispatch.js';

exitWith(cniProcess((env, stdin, loadDeps) => runCniWith(env, stdin, loadDeps, {
  ADD: async () => (await import('./cmd/add.js')).cmdAdd,
  DEL: async () => (await import('./cmd/del.js')).cmdDel,
})));
