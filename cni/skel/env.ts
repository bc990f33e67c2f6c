// The CNI_* environment, validated per command before any work is done (spec "Parameters").
// A runtime bug (missing netns, odd interface name) is reported as code 4 naming the variable,
// instead of surfacing later as a confusing kernel error.
import { CniError, CNI_ERR } from './errors.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;   // '' for GC/STATUS/VERSION
  netns: string;         // '' when not given (DEL may omit it)
  ifname: string;
  args: string;          // CNI_ARGS, raw
  path: string;          // CNI_PATH, raw
}

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function parseCommand(raw: string | undefined): CniCommand {
  if (raw !== undefined && (COMMANDS as readonly string[]).includes(raw)) return raw as CniCommand;
  throw new CniError(CNI_ERR.invalidEnv,
    `CNI_COMMAND: ${JSON.stringify(raw ?? '')} is invalid: must be one of ${COMMANDS.join(', ')}`);
}

export function parseEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = parseCommand(env['CNI_COMMAND']);
  const out: CniEnv = {
    command,
    containerId: env['CNI_CONTAINERID'] ?? '',
    netns: env['CNI_NETNS'] ?? '',
    ifname: env['CNI_IFNAME'] ?? '',
    args: env['CNI_ARGS'] ?? '',
    path: env['CNI_PATH'] ?? '',
  };
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    validateContainerId(out.containerId);
    validateIfname(out.ifname);
    if (command !== 'DEL' || out.netns !== '') validateNetns(out.netns);
  }
  return out;
}

export function validateContainerId(id: string): void {
  if (id === '') throw envError('CNI_CONTAINERID', id, 'must not be empty');
  if (id.length > 1024 || !CONTAINER_ID_RE.test(id)) {
    throw envError('CNI_CONTAINERID', id, 'must start with a letter or digit followed by letters, digits, "_", "." or "-" (at most 1024)');
  }
}

export function validateIfname(name: string): void {
  if (name === '') throw envError('CNI_IFNAME', name, 'must not be empty');
  if (name === '.' || name === '..') throw envError('CNI_IFNAME', name, 'must not be "." or ".."');
  if (Buffer.byteLength(name) > 15) throw envError('CNI_IFNAME', name, 'must be at most 15 bytes');
  if (/[/:\s]/.test(name) || [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw envError('CNI_IFNAME', name, 'must not contain "/", ":", whitespace or control characters');
  }
}

function validateNetns(netns: string): void {
  if (netns === '') throw envError('CNI_NETNS', netns, 'must not be empty for this command');
  if (!netns.startsWith('/') || netns.includes('\0')) throw envError('CNI_NETNS', netns, 'must be an absolute path');
}

function envError(name: string, value: string, rule: string): CniError {
  return new CniError(CNI_ERR.invalidEnv, `${name}: ${JSON.stringify(value)} is invalid: ${rule}`);
}
