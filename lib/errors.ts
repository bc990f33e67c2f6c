// Typed errors with stable codes and a cause (docs/design.md, rule 8). A message says what, where and
// why; `field`/`value`/`rule` are filled for validation errors so callers can render them.

export type ErrorCode =
  | 'CONFIG_INVALID'      // net-conf.json or a flag failed validation
  | 'CONFIG_MISSING'      // no network config found (yet)
  | 'LEASE_CONFLICT'      // a create-if-absent transaction lost a race
  | 'SUBNETS_EXHAUSTED'   // no free subnet left in [SubnetMin, SubnetMax]
  | 'LEASE_LOST'          // our lease vanished and another node now holds the subnet
  | 'LEASE_INVALID'       // a stored lease could not be decoded
  | 'NETLINK'             // the kernel refused a request (errno in `errno`)
  | 'NETNS'               // could not enter or open a network namespace
  | 'BACKEND'             // backend set-up failed (device, interface selection)
  | 'KUBE'                // Kubernetes API failure
  | 'ETCD'                // etcd failure
  | 'ABORTED'             // the operation was cancelled by its AbortSignal
  | 'INTERNAL';

export interface TwillErrorDetails {
  field?: string;
  value?: unknown;
  rule?: string;
  errno?: number;
  cause?: unknown;
}

export class TwillError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly value: unknown;
  readonly rule: string | undefined;
  readonly errno: number | undefined;

  constructor(code: ErrorCode, message: string, details: TwillErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TwillError';
    this.code = code;
    this.field = details.field;
    this.value = details.value;
    this.rule = details.rule;
    this.errno = details.errno;
  }
}

/** A validation error: `<field>: <value> is invalid: <rule>`. */
export function invalid(field: string, value: unknown, rule: string, code: ErrorCode = 'CONFIG_INVALID'): TwillError {
  return new TwillError(code, `${field}: ${JSON.stringify(value)} is invalid: ${rule}`, { field, value, rule });
}

export function isTwillError(err: unknown, code?: ErrorCode): err is TwillError {
  return err instanceof TwillError && (code === undefined || err.code === code);
}

export function abortError(signal: AbortSignal): TwillError {
  return new TwillError('ABORTED', 'operation aborted', { cause: signal.reason });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
