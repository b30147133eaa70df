// One firewall operation at a time per network namespace, across processes:
// the fast path assumes nothing changes its chains between its restores, and
// strand's command, daemon and CNI plugins may all program one host at once.
// flock, so a holder killed with kill -9 never wedges the others.
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { lock, unlock } from '../store/local-lock.js';

const LOCK_DIR = '/run/strand/locks';

/** The lock file of the namespace at nsPath (the calling thread's own by default), named by its inode. */
export function lockPathFor(nsPath = '/proc/thread-self/ns/net'): string {
  return join(LOCK_DIR, `firewall-${statSync(nsPath).ino}.lock`);
}

export async function withHostLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(LOCK_DIR, { recursive: true });
  const fd = openSync(path, 'a');
  try {
    await lock(fd, true);
    try {
      return await fn();
    } finally {
      unlock(fd);
    }
  } finally {
    closeSync(fd);
  }
}
