// From strand's errors to CNI error codes. The spec's codes are used where one
// fits; everything else is 999, libcni's "internal", which the reference
// plugins use for most failures. `details` names strand's own code so a
// person can tell an exhausted pool from a kernel refusal.
//
//   StrandError 'invalid'                         → 7  invalid network config
//   'conflict', 'unavailable', any retryable one  → 11 try again later
//   'exhausted' (as host-local's "no IP addresses available"),
//   'exists', 'in-use', 'not-found', 'kernel', 'internal' → 999
//   CniError                                      → its own code
//   anything else                                 → 999 with its message
import { StrandError } from '../../../common/errors.js';
import { CniError, CNI_CODES } from './types.js';

export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof StrandError) {
    if (err.code === 'invalid') return new CniError(CNI_CODES.invalidConfig, err.message, 'strand: invalid');
    if (err.retryable) return new CniError(CNI_CODES.tryAgainLater, err.message, `strand: ${err.code}`);
    return new CniError(CNI_CODES.internal, err.message, `strand: ${err.code}`);
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new CniError(CNI_CODES.internal, msg || 'unknown error');
}

/** The error JSON the spec prints on stdout. */
export function errorJson(err: CniError, cniVersion: string): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion, code: err.code, msg: err.message };
  if (err.details !== undefined && err.details !== '') out.details = err.details;
  return out;
}
