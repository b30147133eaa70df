// One firewall operation at a time, across processes: the fast path assumes
// nothing changes its chains between its restores, and strand's command,
// daemon and CNI plugins may all program one host at once. One lock for the
// machine (not one per namespace): a file per namespace could never be
// removed safely and would pile up. flock, so a holder killed with kill -9
// never wedges the others.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { lock, unlock } from '../store/local-lock.js';
import { DEFAULT_RUN_DIR } from '../common/defaults.js';

const LOCK_DIR = `${DEFAULT_RUN_DIR}/locks`;

export const FIREWALL_LOCK = join(LOCK_DIR, 'firewall.lock');

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
