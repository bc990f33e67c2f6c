// Reads the agent's subnet.env (KEY=VALUE lines, flannel's variable names).
import { readFile } from 'node:fs/promises';

export type SubnetEnv = Record<string, string>;

export function parseSubnetEnv(text: string): SubnetEnv {
  const out: SubnetEnv = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return out;
}

export async function readSubnetEnv(path: string): Promise<SubnetEnv | undefined> {
  try {
    return parseSubnetEnv(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
