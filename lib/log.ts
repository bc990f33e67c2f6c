// Structured logging (pino). Secrets never reach a log line: known secret keys are redacted
// wherever they appear in a logged object. `key` is not one of them: in twill it is an etcd key
// (a lease's), which a warning about that lease must show.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACT = [
  'password', '*.password', 'etcdPassword', '*.etcdPassword',
  'privateKey', '*.privateKey', 'etcdKeyfileContents', 'token', '*.token', 'authorization', '*.authorization',
];

export function createLogger(level: LevelWithSilent = 'info', name = 'twill', destination?: DestinationStream): Logger {
  const opts = {
    name,
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(opts, destination) : pino(opts);
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
