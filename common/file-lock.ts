// flock(2) on a lock file, through koffi. flock rather than a lock file's mere
// existence because the kernel drops the lock when its holder dies (kill -9),
// so a crashed CNI plugin never wedges the store.
//
// Waiting never blocks a thread: a blocking flock on a libuv worker would
// hold that thread for as long as the lock is held, and four such waits stop
// every fs call and dns.lookup of the process. Instead the waiter retries the
// non-blocking flock on a timer with a growing delay, up to a bound, and then
// names the holder (from /proc/locks) in its error.

import fs from 'node:fs';
import { StrandError } from './errors.js';
import { errno as lastErrno, libc } from './libc.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;
const EWOULDBLOCK = 11;

const flock = libc.flock;

/** How long a writer waits for the store lock by default. */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
/** Longest pause between two tries; the first pauses are 1 ms. */
const MAX_DELAY_MS = 20;

/** Takes the lock without blocking; false when another holder has it. */
export function tryLock(fd: number, exclusive: boolean): boolean {
  for (;;) {
    if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true;
    const errno = lastErrno();
    if (errno === EWOULDBLOCK) return false;
    if (errno !== EINTR) throw new StrandError('internal', `flock on lock file failed (errno ${errno})`);
  }
}

export interface LockWait {
  /** The lock file, for the error; default: what /proc/self/fd says. */
  path?: string;
  /** Give up after this long; default: never. */
  timeoutMs?: number;
}

/**
 * Waits for the lock, at most wait.timeoutMs, without occupying a thread:
 * tries again after 1, 1, 2, 4, ... up to 20 ms (jittered, so waiters do not
 * retry in lockstep). Two stores in one process cannot deadlock each other
 * either, since neither blocks the event loop. Throws 'unavailable' naming
 * the lock file and its holder's pid when the bound is reached.
 */
export async function lock(fd: number, exclusive: boolean, wait: LockWait = {}): Promise<void> {
  if (tryLock(fd, exclusive)) return;
  const timeoutMs = wait.timeoutMs ?? Infinity;
  const start = Date.now();
  for (let delay = 1; ; delay = Math.min(MAX_DELAY_MS, delay * 2)) {
    const left = start + timeoutMs - Date.now();
    if (left <= 0) break;
    await new Promise((r) => setTimeout(r, Math.min(left, delay * (0.5 + Math.random()))));
    if (tryLock(fd, exclusive)) return;
  }
  throw new StrandError(
    'unavailable',
    `the lock ${wait.path ?? fdPath(fd)} is still held after ${(timeoutMs / 1000).toFixed(1)} s by ${describeHolders(lockHolders(fd))}; ` +
      'if that process is stuck, stop it (the lock goes with it); otherwise retry',
  );
}

function fdPath(fd: number): string {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `on fd ${fd}`;
  }
}

export function unlock(fd: number): void {
  flock(fd, LOCK_UN);
}

/** glibc's major()/minor() of a st_dev. */
function devParts(dev: bigint): [bigint, bigint] {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return [major, minor];
}

/**
 * The pids holding a lock on the file open at fd, from /proc/locks (waiters,
 * the "->" lines, left out). A file system that reports another device for
 * the lock than stat does (overlayfs) is matched on the inode alone.
 */
export function lockHolders(fd: number): number[] {
  let text: string;
  let st: fs.BigIntStats;
  try {
    st = fs.fstatSync(fd, { bigint: true });
    text = fs.readFileSync('/proc/locks', 'utf8');
  } catch {
    return [];
  }
  const [major, minor] = devParts(st.dev);
  const exact: number[] = [];
  const byInode: number[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(?:FLOCK|POSIX|OFDLCK)\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m || BigInt(m[4]!) !== st.ino) continue;
    const pid = Number(m[1]);
    if (pid <= 0) continue;
    byInode.push(pid);
    if (BigInt(`0x${m[2]}`) === major && BigInt(`0x${m[3]}`) === minor) exact.push(pid);
  }
  return [...new Set(exact.length > 0 ? exact : byInode)];
}

function describeHolders(pids: number[]): string {
  if (pids.length === 0) return 'a process /proc/locks does not show (another pid namespace?)';
  return pids
    .map((pid) => {
      let comm = '';
      try {
        comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // Gone, or not ours to read: the pid alone.
      }
      return comm ? `pid ${pid} (${comm})` : `pid ${pid}`;
    })
    .join(', ');
}
