// twilld entry point: flags/env → options, then wiring only (docs/design.md).
//   twilld [flags]        run the agent
//   twilld status [...]   show this node's lease, peers and health (agent/status.ts)
//   twilld --cleanup      remove everything twill installed on this node
import { createLogger } from '../lib/log.js';
import { errorMessage, isTwillError } from '../lib/errors.js';
import { helpText, parseOptions, redactOptions } from './options.js';
import { VERSION } from './constants.js';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'status') {
    const { runStatusCommand } = await import('./status.js');
    return runStatusCommand(argv.slice(1), process.env);
  }
  let o;
  try {
    o = parseOptions(argv, process.env);
  } catch (err) {
    process.stderr.write(`twilld: ${errorMessage(err)}\n`);
    return 2;
  }
  if (o.help) { process.stdout.write(helpText() + '\n'); return 0; }
  if (o.version) { process.stdout.write(`twilld ${VERSION}\n`); return 0; }
  const logger = createLogger(o.logLevel as 'info');
  if (o.cleanup) {
    const { cleanup } = await import('./cleanup.js');
    return cleanup(o, logger);
  }
  logger.info({ version: VERSION, options: redactOptions(o) }, 'twilld starting');
  const ctl = new AbortController();
  const stop = (sig: string) => {
    if (ctl.signal.aborted) return;
    logger.info({ signal: sig }, 'stopping; the datapath is left as it is');
    ctl.abort();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const { Daemon } = await import('./daemon.js');
  try {
    await new Daemon(o, { logger, signal: ctl.signal }).run();
    return 0;
  } catch (err) {
    logger.fatal({ code: isTwillError(err) ? err.code : undefined, err: errorMessage(err) }, 'twilld exiting');
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Give pino a moment to flush, then leave even if a library keeps a handle open.
  setTimeout(() => process.exit(code), 200).unref();
}, (err) => {
  process.stderr.write(`twilld: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
