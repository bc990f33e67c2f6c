// The in-process entry of the plugin: (env, stdin) -> (exit code, stdout), with every command.
// main.ts is only the process shell around it, so unit tests and the fuzz test drive exactly the
// code the binary runs (hot.ts, the compiled executable's ADD/DEL entry, runs the same
// dispatch.ts with the ADD and DEL rows of this table).
import { runCniWith, type CniOutput, type CommandTable, type DepsLoader } from './dispatch.js';

export type { CniOutput, DepsLoader } from './dispatch.js';

export const ALL_COMMANDS: CommandTable = {
  ADD: async () => (await import('./cmd/add.js')).cmdAdd,
  DEL: async () => (await import('./cmd/del.js')).cmdDel,
  CHECK: async () => (await import('./cmd/check.js')).cmdCheck,
  GC: async () => (await import('./cmd/gc.js')).cmdGc,
  STATUS: async () => (await import('./cmd/status.js')).cmdStatus,
};

export function runCni(env: Readonly<Record<string, string | undefined>>, stdin: string, loadDeps: DepsLoader): Promise<CniOutput> {
  return runCniWith(env, stdin, loadDeps, ALL_COMMANDS);
}
