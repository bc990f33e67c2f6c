// One CNI call, from (env, stdin) to (exit code, stdout): decoding, version negotiation, one
// command from a table (cmd/index.ts), the spec answer. Whatever happens inside, the answer is a
// spec result or a spec error object: nothing escapes as an exception or a stack trace. Unit tests
// and the fuzz test drive runCni(); cniProcess() is the process around it (stdin in, stdout out),
// shared by main.ts and the compiled executable's ADD/DEL bundle (runtime/bun.ts).
import { CniError, CNI_ERR, errorJson, toCniError } from './skel/errors.js';
import { parseCommand, parseEnv, type CniCommand } from './skel/env.js';
import { atLeast, isSupported, LATEST_VERSION, versionResult } from './skel/version.js';
import { decodeStdin, parseConf } from './config.js';
import { renderResult } from './result.js';
import { pluginFs } from './runtime/fs.js';
import { flushTrace, mark } from './runtime/trace.js';
import type { CommandTable } from './cmd/index.js';
import type { PluginDeps } from './deps.js';

export interface CniOutput {
  code: number;          // process exit code
  stdout: string;        // '' when the command prints nothing (DEL, CHECK, GC, STATUS)
}

/** Everything the commands need, loaded on demand (VERSION/STATUS never load netlink). */
export type DepsLoader = () => Promise<PluginDeps>;

/** This process's CNI call: stdin in, runCni() with `commands`, stdout out; the exit code. */
export async function cniProcess(commands: CommandTable): Promise<number> {
  mark('main');
  const stdin = pluginFs().readStdin();
  mark('stdin');
  const out = await runCni(process.env, stdin, async () => {
    const k = await import('./kernel.js');
    mark('import');
    const deps = k.kernelDeps(process.env);
    mark('libc');
    return deps;
  }, commands);
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

export async function runCni(
  env: Readonly<Record<string, string | undefined>>, stdin: string, loadDeps: DepsLoader, commands: CommandTable,
): Promise<CniOutput> {
  let version: string = LATEST_VERSION;
  try {
    const command = parseCommand(env['CNI_COMMAND']);
    if (command === 'VERSION') return ok(versionResult(requestedVersion(stdin) ?? LATEST_VERSION));
    const raw = decodeStdin(stdin);
    if (isSupported(raw['cniVersion'])) version = raw['cniVersion'];
    const cniEnv = parseEnv(env);
    const conf = parseConf(raw);
    version = conf.cniVersion;
    requireVersion(command, version);
    mark('parsed');
    switch (command) {
      case 'STATUS': {
        const cmdStatus = await load(commands.STATUS, command);
        cmdStatus(conf);
        return { code: 0, stdout: '' };
      }
      case 'ADD': {
        const cmdAdd = await load(commands.ADD, command);
        mark('cmd');
        const result = await cmdAdd(cniEnv, conf, await loadDeps());
        return ok(renderResult(result, version));
      }
      case 'DEL': {
        const cmdDel = await load(commands.DEL, command);
        mark('cmd');
        await cmdDel(cniEnv, conf, await loadDeps());
        return { code: 0, stdout: '' };
      }
      case 'CHECK': {
        const cmdCheck = await load(commands.CHECK, command);
        await cmdCheck(cniEnv, conf, await loadDeps());
        return { code: 0, stdout: '' };
      }
      case 'GC': {
        if (!conf.validAttachments) {
          throw new CniError(CNI_ERR.invalidConfig, 'cni.dev/valid-attachments: missing: GC needs the list of valid attachments');
        }
        const cmdGc = await load(commands.GC, command);
        await cmdGc(conf, conf.validAttachments, await loadDeps());
        return { code: 0, stdout: '' };
      }
    }
  } catch (err) {
    const e = toCniError(err);
    return { code: 1, stdout: JSON.stringify(errorJson(e, version)) };
  }
}

function load<T>(loader: (() => Promise<T>) | undefined, command: CniCommand): Promise<T> {
  if (!loader) throw new CniError(CNI_ERR.internal, `${command}: not served by this entry of the plugin (a build error)`);
  return loader();
}

function ok(body: Record<string, unknown>): CniOutput {
  return { code: 0, stdout: JSON.stringify(body) };
}

/** VERSION answers even for odd input: the requested version when we speak it, else ours. */
function requestedVersion(stdin: string): string | undefined {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    return isSupported(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const MIN_VERSION: Partial<Record<CniCommand, string>> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

function requireVersion(command: CniCommand, version: string): void {
  const min = MIN_VERSION[command];
  if (min && !atLeast(version, min)) {
    throw new CniError(CNI_ERR.incompatibleVersion, `cniVersion: ${JSON.stringify(version)} does not allow ${command}: it needs ${min} or later`);
  }
}
