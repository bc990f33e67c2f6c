// Helpers for the traffic-rule tests: named netns created and deleted by the test itself, and
// commands run inside them. Every name starts with uniquePrefix(), so parallel runs never meet.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export async function sh(cmd: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) return (await execFileP(cmd, args, { encoding: 'utf8' })).stdout;
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
    child.stdin?.end(input);
  });
}

export const inNs = (ns: string, cmd: string, ...args: string[]) => sh('ip', ['netns', 'exec', ns, cmd, ...args]);
export const inNsInput = (ns: string, input: string, cmd: string, ...args: string[]) => sh('ip', ['netns', 'exec', ns, cmd, ...args], input);

/** Creates the netns with lo up; returns a cleanup that never throws. */
export async function addNetns(name: string): Promise<void> {
  await sh('ip', ['netns', 'add', name]);
  await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export async function delNetns(...names: string[]): Promise<void> {
  for (const n of names) await sh('ip', ['netns', 'del', n]).catch(() => undefined);
}

/** A veth pair between two netns, created inside `a` so the names never touch the host. */
export async function veth(a: string, aName: string, aAddr: string, b: string, bName: string, bAddr: string): Promise<void> {
  await sh('ip', ['-n', a, 'link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b]);
  await sh('ip', ['-n', a, 'addr', 'add', aAddr, 'dev', aName]);
  await sh('ip', ['-n', b, 'addr', 'add', bAddr, 'dev', bName]);
  await sh('ip', ['-n', a, 'link', 'set', aName, 'up']);
  await sh('ip', ['-n', b, 'link', 'set', bName, 'up']);
}

export async function hasBinary(name: string): Promise<boolean> {
  try {
    await sh('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

// A TCP server that answers every connection with the peer address it saw, then closes.
const SERVER = `const net=require('node:net');const s=net.createServer(c=>{c.end(c.remoteAddress.replace(/^::ffff:/,'')+'\\n')});s.listen(+process.argv[1],'0.0.0.0',()=>console.log('listening'));`;
const CLIENT = `const net=require('node:net');const c=net.connect({host:process.argv[1],port:+process.argv[2],localAddress:process.argv[3]||undefined});let d='';c.setTimeout(5000,()=>{console.error('timeout');process.exit(2)});c.on('data',x=>d+=x);c.on('end',()=>{process.stdout.write(d)});c.on('error',e=>{console.error(e.message);process.exit(1)});`;

export interface PeerEchoServer { proc: ChildProcess; stop(): void }

/** Starts the peer-address server in `ns` on `port`; resolves once it listens. */
export function startPeerServer(ns: string, port: number): Promise<PeerEchoServer> {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = () => { if (proc.exitCode === null && proc.pid !== undefined) proc.kill('SIGKILL'); };
  return new Promise((resolve, reject) => {
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    proc.stdout?.once('data', () => resolve({ proc, stop }));
    proc.once('exit', (code) => reject(new Error(`peer server in ${ns} exited (${String(code)}): ${err}`)));
  });
}

/** Connects from `ns` to host:port and returns the peer address the server reported. */
export async function seenSource(ns: string, host: string, port: number): Promise<string> {
  return (await inNs(ns, process.execPath, '-e', CLIENT, host, String(port))).trim();
}
