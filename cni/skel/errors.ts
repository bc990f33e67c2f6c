// CNI error results (spec "Error" + "Well-known error codes"). Every failure the plugin reports
// is a CniError, so plugin.ts can always print `{cniVersion, code, msg, details}` and exit non-zero:
// the runtime never sees a stack trace instead of a spec answer. Messages name what and where.

export type CniErrorCode =
  | 1    // incompatible CNI version
  | 2    // unsupported field in network configuration
  | 3    // container unknown or does not exist
  | 4    // invalid necessary environment variables
  | 5    // I/O failure
  | 6    // failed to decode content
  | 7    // invalid network configuration
  | 11   // try again later
  | 50   // STATUS: plugin not available
  | 51   // STATUS: plugin not available, existing containers may be limited
  | 100  // twill: address pool exhausted
  | 101  // twill: CHECK found drift
  | 102  // twill: kernel (netlink) refused a change
  | 999; // twill: unexpected internal error

export const CNI_ERR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  notAvailableLimited: 51,
  exhausted: 100,
  drift: 101,
  kernel: 102,
  internal: 999,
} as const satisfies Record<string, CniErrorCode>;

export class CniError extends Error {
  readonly code: CniErrorCode;
  readonly details: string;

  constructor(code: CniErrorCode, msg: string, details = '', cause?: unknown) {
    super(msg, cause === undefined ? undefined : { cause });
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}

export function isCniError(err: unknown): err is CniError {
  return err instanceof CniError;
}

/** Wraps anything thrown into a CniError, keeping the original as cause and its text as details. */
export function toCniError(err: unknown, fallback: CniErrorCode = CNI_ERR.internal): CniError {
  if (err instanceof CniError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const errno = (err as { code?: unknown } | null)?.code;
  const code = typeof errno === 'string' && /^E[A-Z]+$/.test(errno) ? CNI_ERR.io : fallback;
  return new CniError(code, msg, err instanceof Error && err.stack ? firstFrames(err.stack) : '', err);
}

function firstFrames(stack: string): string {
  return stack.split('\n').slice(1, 4).map((l) => l.trim()).join(' | ');
}

/** The spec's error object. */
export function errorJson(err: CniError, cniVersion: string): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion, code: err.code, msg: err.message };
  if (err.details) out['details'] = err.details;
  return out;
}
