// The process shell of a CNI call, shared by main.ts (every command, the installer) and hot.ts
// (the compiled executable's ADD/DEL entry): stdin in, the runner, stdout out, the exit code.
// The kernel layer (FFI, netlink) loads only when a command asks for it.
import { pluginFs } from './sys/fs.js';
import { flushTrace, mark } from './trace.js';
import type { CniRunner } from './dispatch.js';

export async function cniProcess(run: CniRunner): Promise<number> {
  mark('main');
  const stdin = pluginFs().readStdin();
  mark('stdin');
  const out = await run(process.env, stdin, async () => {
    const k = await import('./kernel.js');
    mark('import');
    const deps = k.kernelDeps(process.env);
    mark('libc');
    return deps;
  });
  if (out.stdout) pluginFs().write(1, out.stdout + '\n');
  mark('done');
  flushTrace();
  return out.code;
}

/** Exits with the code `main` resolves to; an escaped exception is a crash report on stderr. */
export function exitWith(main: Promise<number>): void {
  main.then(
    (code) => process.exit(code),
    (err: unknown) => {
      pluginFs().write(2, `twill: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
