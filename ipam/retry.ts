// Optimistic concurrency: read, compute, commit with compare-and-swap, and on
// 'conflict' start over. Jittered exponential backoff keeps many hosts
// hammering one pool from retrying in lockstep.
import { StrandError, isStrandError } from '../common/errors.js';

export interface RetryOptions {
  /** Attempts before giving up with a retryable 'conflict'. */
  attempts: number;
  /** What to name in the final error. */
  what: string;
}

export async function withRetry<T>(options: RetryOptions, attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isStrandError(err, 'conflict')) throw err;
      if (i + 1 >= options.attempts) {
        throw new StrandError('conflict', `${options.what}: still conflicting with concurrent changes after ${options.attempts} attempts; retry`, {
          cause: err,
        });
      }
      const ceiling = Math.min(50, 2 ** Math.min(i, 6));
      await new Promise((r) => setTimeout(r, Math.random() * ceiling));
    }
  }
}
