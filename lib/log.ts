// Structured logging (pino). Secrets never reach a log line: known secret keys are redacted
// wherever they appear in a logged object.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACT = [
  'password', '*.password', 'etcdPassword', '*.etcdPassword',
  'key', '*.key', 'etcdKeyfileContents', 'token', '*.token', 'authorization', '*.authorization',
];

export function createLogger(level: LevelWithSilent = 'info', name = 'twill'): Logger {
  return pino({
    name,
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
