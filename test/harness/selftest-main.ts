// Harness self-test entry (used by test/e2e/harness.test.ts): builds a cluster without agents,
// prints `up <prefix> <pid,...>`, then either waits for a signal or crashes, so the test can
// prove the exit hooks remove every namespace and process even when nobody calls destroy().
import { startCluster } from './cluster.js';
import { trackedProcs } from './procs.js';

const how = process.argv[2] ?? 'wait';
const c = await startCluster({ nodes: 2, startAgents: false });
const ext = await c.tcpProbe(c.node(0).netns, c.external.ip);   // starts an echo server process
if (!ext.ok) throw new Error(`probe failed: ${ext.error}`);
const pids = [c.store.pid(), ...trackedProcs().map((p) => p.pid)].filter((p) => p !== undefined).join(',');
process.stdout.write(`up ${c.prefix} ${pids}\n`);
if (how === 'crash') setTimeout(() => { throw new Error('selftest: deliberate crash'); }, 50);
else if (how === 'exit') setTimeout(() => process.exit(3), 50);
else setInterval(() => undefined, 1000);
