// Turning store changes into LeaseEvents the same way in every store: a put of a decodable
// value is 'added'; a put of an undecodable one is 'invalid' (and, if the key held a valid
// lease before, that lease is 'removed' so it is no longer programmed); a delete of a known
// lease is 'removed'; a delete of any other key (undecodable, malformed, or unknown) is 'deleted',
// so an invalid entry leaves the agent's books when its key goes.
import type { Lease, LeaseEvent } from './types.js';
import type { DecodeResult } from '../lease/codec.js';

export function putEvents(key: string, prev: Lease | undefined, decoded: DecodeResult<Lease>): LeaseEvent[] {
  if (decoded.ok) return [{ type: 'added', lease: decoded.value }];
  const invalidEv: LeaseEvent = { type: 'invalid', key, reason: decoded.reason };
  return prev ? [{ type: 'removed', lease: prev }, invalidEv] : [invalidEv];
}

export function deleteEvents(key: string, prev: Lease | undefined): LeaseEvent[] {
  return prev ? [{ type: 'removed', lease: prev }] : [{ type: 'deleted', key }];
}
