// Standalone fake Kubernetes API server, for the multi-node netns cluster: the harness runs it
// inside the underlay namespace so agents in node namespaces reach it over the test network:
//
//   ip netns exec <ns> node dist/test/util/fake-apiserver-main.js --listen 10.x.x.x:6443 \
//       [--history 1000] [--watch-expired event|http] [--bookmark-interval-ms 0]
//
// Protocol (newline-delimited JSON; one request per line on stdin, one reply per line on stdout):
//   ready line   {"event":"listening","url":"http://10.x.x.x:6443"}            (first line, once)
//   request      {"id":<any>,"cmd":"<name>","args":{...}}                      (id is echoed back)
//   reply        {"id":<any>,"ok":true,"result":<json>} | {"id":<any>,"ok":false,"error":"<message>"}
// Commands (args → result):
//   createNode     {name, podCIDR?, podCIDRs?, labels?, annotations?, addresses?}  → Node
//   assignPodCIDR  {name, podCIDRs: string | string[]}   ([] clears)           → Node
//   patchNode      {name, patch, type?: merge|strategic|json, subresource?: ""|"status"} → Node
//                  (applied like a client request, without resourceVersion checks unless the patch carries one)
//   deleteNode     {name}                                                      → Node (as deleted)
//   getNode        {name}                                                      → Node | null
//   listNodes      {}                                                          → Node[]
//   createPod      {namespace, name, nodeName}                                 → Pod
//   compactHistory {keep?: number = 0}                                         → oldest watchable resourceVersion
//   setHistoryLimit {limit}                                                    → null
//   dropAllWatches {mode?: "reset"|"close"}                                    → number of watches dropped
//   sendBookmarks  {}                                                          → number of watches bookmarked
//   failRequests   {status: number | null, method?, pathRegex?}                → null
//   stats          {}  → {resourceVersion, activeWatches, requests, byMethod: {GET,..}, watches, patches, conflicts}
//   requests       {method?, path?, pathRegex?, watch?, status?}               → number of matching requests
//   shutdown       {}  → null, then the process exits 0
// Stdin EOF or SIGTERM also shuts down. Diagnostics go to stderr, never stdout.
import { createInterface } from 'node:readline';
import { FakeApiServer, type FakeNodeSpec, type Json, type JsonObject } from './fake-apiserver.js';
import { applyPatch, type PatchType } from './fake-apiserver-patch.js';

interface Args { host: string; port: number; history: number; watchExpired: 'event' | 'http'; bookmarkIntervalMs: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { host: '127.0.0.1', port: 6443, history: 1000, watchExpired: 'event', bookmarkIntervalMs: 0 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const val = argv[++i];
    if (val === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--listen') {
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(val);
      if (!m) throw new Error(`--listen ${val}: expected <ip>:<port>`);
      a.host = m[1]!;
      a.port = Number(m[2]);
    } else if (flag === '--history') a.history = Number(val);
    else if (flag === '--watch-expired' && (val === 'event' || val === 'http')) a.watchExpired = val;
    else if (flag === '--bookmark-interval-ms') a.bookmarkIntervalMs = Number(val);
    else throw new Error(`unknown flag ${flag}`);
  }
  return a;
}

type Cmd = { id?: Json; cmd?: string; args?: Record<string, unknown> };

function str(args: Record<string, unknown>, k: string): string {
  const v = args[k];
  if (typeof v !== 'string' || v === '') throw new Error(`args.${k} must be a non-empty string`);
  return v;
}

function stats(s: FakeApiServer): Json {
  const byMethod: Record<string, number> = {};
  for (const r of s.requests) byMethod[r.method] = (byMethod[r.method] ?? 0) + 1;
  return {
    resourceVersion: s.resourceVersion, activeWatches: s.activeWatches, requests: s.requests.length, byMethod,
    watches: s.count({ watch: true }), patches: s.count({ method: 'PATCH' }), conflicts: s.count({ status: 409 }),
  };
}

async function run(s: FakeApiServer, c: Cmd): Promise<Json> {
  const args = c.args ?? {};
  switch (c.cmd) {
    case 'createNode': return s.createNode(args as unknown as FakeNodeSpec);
    case 'assignPodCIDR': return s.assignPodCIDR(str(args, 'name'), args['podCIDRs'] as string | string[]);
    case 'patchNode': {
      const type = (args['type'] ?? 'merge') as PatchType;
      const sub = args['subresource'] === 'status';
      return s.updateNode(str(args, 'name'), (n) => {
        const next = applyPatch(type, n, args['patch'] as Json) as JsonObject;
        if (sub) next['spec'] = n['spec'] ?? {};
        for (const k of Object.keys(n)) delete n[k];
        Object.assign(n, next);
      });
    }
    case 'deleteNode': return s.deleteNode(str(args, 'name'));
    case 'getNode': return s.getNode(str(args, 'name')) ?? null;
    case 'listNodes': return s.listNodes();
    case 'createPod': return s.createPod(str(args, 'namespace'), str(args, 'name'), str(args, 'nodeName'));
    case 'compactHistory': return s.compactHistory(typeof args['keep'] === 'number' ? args['keep'] : 0);
    case 'setHistoryLimit': s.setHistoryLimit(Number(args['limit'])); return null;
    case 'dropAllWatches': return s.dropAllWatches(args['mode'] === 'close' ? 'close' : 'reset');
    case 'sendBookmarks': return s.sendBookmarks();
    case 'failRequests': {
      const method = typeof args['method'] === 'string' ? args['method'] : undefined;
      const re = typeof args['pathRegex'] === 'string' ? new RegExp(args['pathRegex']) : undefined;
      s.failRequests(args['status'] === null ? null : Number(args['status']),
        (m, p) => (method === undefined || m === method) && (re === undefined || re.test(p)));
      return null;
    }
    case 'stats': return stats(s);
    case 'requests': {
      const re = typeof args['pathRegex'] === 'string' ? new RegExp(args['pathRegex']) : undefined;
      return s.count({
        method: args['method'] as string | undefined, path: re ?? (args['path'] as string | undefined),
        watch: args['watch'] as boolean | undefined, status: args['status'] as number | undefined,
      });
    }
    default: throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const s = await FakeApiServer.start({ host: a.host, port: a.port, historyLimit: a.history, watchExpired: a.watchExpired, bookmarkIntervalMs: a.bookmarkIntervalMs });
  const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  let closing = false;
  const shutdown = async (code: number) => {
    if (closing) return;
    closing = true;
    await s.close();
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  out({ event: 'listening', url: s.url });
  const rl = createInterface({ input: process.stdin });
  // One command at a time, so replies come back in request order.
  let chain = Promise.resolve();
  const handle = async (line: string): Promise<void> => {
    if (line.trim() === '') return;
    let c: Cmd;
    try { c = JSON.parse(line) as Cmd; } catch (err) { out({ id: null, ok: false, error: `invalid JSON: ${(err as Error).message}` }); return; }
    if (c.cmd === 'shutdown') { out({ id: c.id ?? null, ok: true, result: null }); await shutdown(0); return; }
    try {
      out({ id: c.id ?? null, ok: true, result: await run(s, c) });
    } catch (err) {
      out({ id: c.id ?? null, ok: false, error: (err as Error).message });
    }
  };
  rl.on('line', (line) => { chain = chain.then(() => handle(line)); });
  rl.on('close', () => { chain = chain.then(() => shutdown(0)); });
}

main().catch((err: unknown) => {
  process.stderr.write(`fake-apiserver: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
