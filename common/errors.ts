// One error type for all of strand. Front doors map `code` to CNI error codes
// and to Docker's {"Err": ...}; the message names the object and what to do.

export type ErrorCode =
  | 'invalid' // bad input: the caller must change the request
  | 'not-found' // the named object does not exist
  | 'exists' // an object of that name or value exists already
  | 'conflict' // a concurrent change won (compare-and-swap lost); retry
  | 'in-use' // the object is still used by something else
  | 'exhausted' // a pool or range has nothing left
  | 'unavailable' // a server or resource cannot be reached now; retry later
  | 'kernel' // the kernel refused for a reason not covered above
  | 'internal'; // a bug in strand

export class StrandError extends Error {
  readonly code: ErrorCode;
  /** Whether retrying the same request later may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StrandError';
    this.code = code;
    this.retryable = options?.retryable ?? (code === 'conflict' || code === 'unavailable');
  }
}

export function isStrandError(err: unknown, code?: ErrorCode): err is StrandError {
  return err instanceof StrandError && (code === undefined || err.code === code);
}

/** The promise's value, or undefined when it fails with 'not-found' (deleting what is already gone). */
export async function unlessNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isStrandError(err, 'not-found')) return undefined;
    throw err;
  }
}
