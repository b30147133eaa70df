// Argument checks shared by every backend, so that all three reject the same
// bad requests with the same 'invalid' errors before touching any data.

import { StrandError } from '../common/errors.js';
import type { TxnCheck, TxnOp } from './types.js';

export function checkKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw new StrandError('invalid', 'store key must be a non-empty string');
}

export function checkRevision(rev: number | undefined, what: string): void {
  if (rev !== undefined && (!Number.isSafeInteger(rev) || rev < 0)) {
    throw new StrandError('invalid', `${what} ${rev} must be a non-negative integer`);
  }
}

export function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new StrandError('invalid', `lease TTL ${ttlSeconds} must be a whole number of seconds, at least 1`);
  }
}

/** One op per key: etcd refuses a transaction that names a key twice, so all backends do. */
export function checkTxn(checks: TxnCheck[], ops: TxnOp[]): void {
  for (const c of checks) {
    checkKey(c.key);
    if ('modRevision' in c) checkRevision(c.modRevision, `check on "${c.key}": modRevision`);
  }
  const seen = new Set<string>();
  for (const op of ops) {
    checkKey(op.key);
    if (op.op !== 'put' && op.op !== 'delete') throw new StrandError('invalid', `transaction op "${String((op as { op: unknown }).op)}" must be put or delete`);
    if (op.op === 'put' && typeof op.value !== 'string') throw new StrandError('invalid', `value for "${op.key}" must be a string`);
    if (seen.has(op.key)) throw new StrandError('invalid', `transaction names key "${op.key}" twice`);
    seen.add(op.key);
  }
}

/** Whether a check holds for a key whose modRevision is `mod` (0 when absent). */
export function checkHolds(check: TxnCheck, mod: number): boolean {
  if ('modRevision' in check) return mod === check.modRevision;
  if ('absent' in check) return mod === 0;
  return mod !== 0;
}

export function describeCheck(check: TxnCheck): string {
  if ('modRevision' in check) {
    return check.modRevision === 0 ? `"${check.key}" must not exist` : `"${check.key}" must be at revision ${check.modRevision}`;
  }
  return 'absent' in check ? `"${check.key}" must not exist` : `"${check.key}" must exist`;
}

export function conflict(what: string): StrandError {
  return new StrandError('conflict', `${what}: changed concurrently; read it again and retry`);
}
