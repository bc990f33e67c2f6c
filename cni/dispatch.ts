// The plugin's logic from (env, stdin) to (exit code, stdout): decoding, version negotiation,
// one command, the spec answer. Whatever happens inside, the answer is a spec result or a spec
// error object: nothing escapes as an exception or a stack trace.
// The commands come in a table of loaders so that an entry can be bundled with only the
// commands it serves (hot.ts: ADD and DEL); plugin.ts holds the full table (main.ts, tests).
import { CniError, CNI_ERR, errorJson, toCniError } from './skel/errors.js';
import { parseCommand, parseEnv, type CniCommand } from './skel/env.js';
import { atLeast, isSupported, LATEST_VERSION, versionResult } from './skel/version.js';
import { decodeStdin, parseConf } from './config.js';
import { renderResult } from './result.js';
import { mark } from './trace.js';
import type { PluginDeps } from './deps.js';
import type { cmdAdd } from './cmd/add.js';
import type { cmdCheck } from './cmd/check.js';
import type { cmdDel } from './cmd/del.js';
import type { cmdGc } from './cmd/gc.js';
import type { cmdStatus } from './cmd/status.js';

export interface CniOutput {
  code: number;          // process exit code
  stdout: string;        // '' when the command prints nothing (DEL, CHECK, GC, STATUS)
}

/** Everything the commands need, loaded on demand (VERSION/STATUS never load netlink). */
export type DepsLoader = () => Promise<PluginDeps>;

/** Loaders of the command implementations an entry serves. */
export interface CommandTable {
  ADD?: () => Promise<typeof cmdAdd>;
  DEL?: () => Promise<typeof cmdDel>;
  CHECK?: () => Promise<typeof cmdCheck>;
  GC?: () => Promise<typeof cmdGc>;
  STATUS?: () => Promise<typeof cmdStatus>;
}

export type CniRunner = (env: Readonly<Record<string, string | undefined>>, stdin: string, loadDeps: DepsLoader) => Promise<CniOutput>;

export async function runCniWith(
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
