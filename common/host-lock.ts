// Host-wide locks across processes: strand's command, daemon and CNI plugins
// may all work on one host at once. One lock per kind of work for the
// machine (not one per namespace or object): such files could never be
// removed safely and would pile up. flock, so a holder killed with kill -9
// never wedges the others.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { lock, unlock } from './file-lock.js';
import { DEFAULT_RUN_DIR } from './defaults.js';

const LOCK_DIR = `${DEFAULT_RUN_DIR}/locks`;

/** The lock file of one kind of host-wide work. */
export const hostLock = (name: string): string => join(LOCK_DIR, `${name}.lock`);

/** One firewall operation at a time: the fast path assumes nothing changes its chains between its restores. */
export const FIREWALL_LOCK = hostLock('firewall');

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
