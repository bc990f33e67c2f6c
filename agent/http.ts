// The agent's HTTP surface: /healthz (liveness: the process loop still turns), /readyz (the
// readiness conditions, with the reasons in the body so `curl` explains a 503), /metrics
// (Prometheus text) and /status (AgentStatus as JSON for `twilld status`). node:http only: four
// read-only GET routes do not justify a framework. Handlers never throw into node:http; a
// failing status getter is a 500 with the message.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TwillError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import type { AgentStatus } from './state.js';

export interface HttpServerOptions {
  host: string;
  port: number;                   // 0 = pick a free port (tests)
  getStatus: () => AgentStatus;
  metrics: Metrics;
  logger: Logger;
  /** Liveness: false when the main loop has stalled. Default: always alive. */
  isAlive?: () => boolean;
  /**
   * Readiness without building the whole status (peers list) on every probe. Default: taken
   * from getStatus().
   */
  getReadiness?: () => Pick<AgentStatus, 'ready' | 'notReadyReasons'>;
  /**
   * Refresh the status-mirroring gauges (peers, ready, lease expiry) from getStatus() on every
   * scrape. Off by default: the daemon sets them itself, and a status snapshot with 20k peers
   * is not free.
   */
  syncMetricsFromStatus?: boolean;
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

type Reply = { status: number; type: string; body: string };

const text = (status: number, body: string): Reply => ({ status, type: 'text/plain; charset=utf-8', body });

async function route(path: string, o: HttpServerOptions): Promise<Reply> {
  switch (path) {
    case '/healthz':
      return (o.isAlive?.() ?? true) ? text(200, 'ok\n') : text(503, 'not alive: the agent loop has stalled\n');
    case '/readyz': {
      const s = o.getReadiness?.() ?? o.getStatus();
      if (s.ready) return text(200, 'ok\n');
      const reasons = s.notReadyReasons.length > 0 ? s.notReadyReasons : ['not ready'];
      return text(503, `${reasons.join('\n')}\n`);
    }
    case '/metrics':
      if (o.syncMetricsFromStatus === true) o.metrics.updateFromStatus(o.getStatus());
      return { status: 200, type: o.metrics.contentType, body: await o.metrics.text() };
    case '/status':
      return { status: 200, type: 'application/json', body: `${JSON.stringify(o.getStatus(), null, 2)}\n` };
    default:
      return text(404, `not found: ${path} (try /healthz, /readyz, /metrics, /status)\n`);
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, o: HttpServerOptions): Promise<void> {
  let reply: Reply;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    reply = text(405, `method ${String(req.method)} not allowed\n`);
    res.setHeader('Allow', 'GET, HEAD');
  } else {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    try {
      reply = await route(path, o);
    } catch (err) {
      o.logger.error({ err, path }, 'http handler failed');
      reply = text(500, `internal error: ${errorMessage(err)}\n`);
    }
  }
  res.writeHead(reply.status, { 'Content-Type': reply.type, 'Content-Length': Buffer.byteLength(reply.body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : reply.body);
}

export function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const server = createServer((req, res) => { void handle(req, res, opts); });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    const onListenError = (err: Error) =>
      reject(new TwillError('INTERNAL', `health server: cannot listen on ${opts.host}:${opts.port}: ${err.message}`, { cause: err }));
    server.once('error', onListenError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onListenError);
      server.on('error', (err) => opts.logger.error({ err }, 'http server error'));
      const { port } = server.address() as AddressInfo;
      opts.logger.info({ host: opts.host, port }, 'serving /healthz /readyz /metrics /status');
      resolve({
        port,
        close: () => new Promise<void>((res, rej) => {
          server.close((err) => (err ? rej(err) : res()));
          server.closeAllConnections();
        }),
      });
    });
  });
}
