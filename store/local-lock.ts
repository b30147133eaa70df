// flock(2) on a lock file, through koffi. flock rather than a lock file's mere
// existence because the kernel drops the lock when its holder dies (kill -9),
// so a crashed CNI plugin never wedges the store.

import koffi from 'koffi';
import { StrandError } from '../common/errors.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;
const EWOULDBLOCK = 11;

const libc = koffi.load('libc.so.6');
const flock = libc.func('int flock(int fd, int operation)');

/** Takes the lock without blocking; false when another holder has it. */
export function tryLock(fd: number, exclusive: boolean): boolean {
  for (;;) {
    if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true;
    const errno = koffi.errno();
    if (errno === EWOULDBLOCK) return false;
    if (errno !== EINTR) throw new StrandError('internal', `flock on store lock failed (errno ${errno})`);
  }
}

/**
 * Waits for the lock. The wait runs on a libuv worker thread (koffi async
 * call) so a process holding the store's lock for an fsync never freezes
 * another process's event loop, and so two stores in one process cannot
 * deadlock each other.
 */
export async function lock(fd: number, exclusive: boolean): Promise<void> {
  if (tryLock(fd, exclusive)) return;
  const op = exclusive ? LOCK_EX : LOCK_SH;
  for (let attempt = 0; ; attempt++) {
    const rc = await new Promise<number>((resolve, reject) => {
      flock.async(fd, op, (err: unknown, res: number) => (err ? reject(err) : resolve(res)));
    });
    if (rc === 0) return;
    // errno is per-thread and the call ran on another thread: retry a few
    // times (EINTR is the only expected failure) before giving up.
    if (attempt >= 5) throw new StrandError('internal', 'flock on store lock keeps failing');
  }
}

export function unlock(fd: number): void {
  flock(fd, LOCK_UN);
}
