// Network namespaces: named ones under /run/netns exactly as `ip netns add`
// makes them (so `ip netns` lists them), handles by path or pid, running code
// inside one, and sysctls as that namespace sees them.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StrandError } from '../common/errors.js';
import {
  CLONE_NEWNET, MS_BIND, MS_REC, MS_SHARED, MNT_DETACH, O_RDONLY, O_CREAT, O_EXCL, O_CLOEXEC, O_NONBLOCK,
} from './constants.js';
import { libc, errno, errnoName } from '../common/libc.js';
import { syscallError } from './errors.js';

export const NETNS_RUN_DIR = '/run/netns';
const EINVAL = 22;
const ENOENT = 2;

/** An open handle on a network namespace; close() it when done. */
export class NetNs {
  constructor(
    /** The path it was opened from (/run/netns/NAME, /proc/PID/ns/net, ...). */
    readonly path: string,
    /** An O_RDONLY file descriptor on the namespace, for setns and IFLA_NET_NS_FD. */
    readonly fd: number,
  ) {}

  /** The namespace's name when it lives under /run/netns. */
  get name(): string | undefined {
    return this.path.startsWith(NETNS_RUN_DIR + '/') ? this.path.slice(NETNS_RUN_DIR.length + 1) : undefined;
  }

  close(): void {
    libc.close(this.fd);
  }
}

export function validateNetnsName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/') || /\s|\0/.test(name) || Buffer.byteLength(name) > 255) {
    throw new StrandError('invalid', `invalid network namespace name "${name}": use a non-empty name without '/', white space, "." or ".."`);
  }
}

function openFd(path: string, what: string): number {
  // Non-blocking: a FIFO given as a namespace (a hostile CNI_NETNS) would otherwise block the whole process on open.
  const fd = libc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0) as number;
  if (fd < 0) throw syscallError(errno(), { action: 'open', object: what });
  return fd;
}

/** The namespace the calling thread is in now. */
export function currentNetns(): NetNs {
  return new NetNs('/proc/thread-self/ns/net', openFd('/proc/thread-self/ns/net', 'the current network namespace'));
}

/** Opens a namespace by name (under /run/netns) or by path. */
export function openNetns(nameOrPath: string): NetNs {
  const path = nameOrPath.includes('/') ? nameOrPath : join(NETNS_RUN_DIR, nameOrPath);
  if (!nameOrPath.includes('/')) validateNetnsName(nameOrPath);
  const fd = openFd(path, `network namespace "${nameOrPath}"`);
  const ns = new NetNs(path, fd);
  // setns would refuse anything else later; check now so the error names the cause.
  if (!isNetnsFd(fd)) {
    ns.close();
    throw new StrandError('invalid', `"${path}" is not a network namespace`);
  }
  return ns;
}

export function openNetnsByPid(pid: number): NetNs {
  if (!Number.isInteger(pid) || pid <= 0) throw new StrandError('invalid', `invalid process id ${pid}`);
  return new NetNs(`/proc/${pid}/ns/net`, openFd(`/proc/${pid}/ns/net`, `network namespace of process ${pid}`));
}

/** True when fd refers to a network namespace (setns into our own current one is a no-op test). */
function isNetnsFd(fd: number): boolean {
  const here = libc.open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC, 0) as number;
  if (here < 0) throw syscallError(errno(), { action: 'open', object: 'the current network namespace' });
  try {
    if ((libc.setns(fd, CLONE_NEWNET) as number) < 0) return false;
    if ((libc.setns(here, CLONE_NEWNET) as number) < 0) throw new StrandError('internal', 'cannot return to the original network namespace');
    return true;
  } finally {
    libc.close(here);
  }
}

/**
 * Runs fn with the calling thread inside ns, then returns to where it was.
 * fn must be synchronous: nothing else may run on this thread meanwhile.
 */
export function withNetns<T>(ns: NetNs, fn: () => T): T {
  const home = currentNetns();
  try {
    if ((libc.setns(ns.fd, CLONE_NEWNET) as number) < 0) {
      throw syscallError(errno(), { action: 'enter', object: `network namespace "${ns.name ?? ns.path}"` });
    }
    try {
      const result = fn();
      if (result && typeof (result as { then?: unknown }).then === 'function') {
        throw new StrandError('internal', 'withNetns needs a synchronous function');
      }
      return result;
    } finally {
      if ((libc.setns(home.fd, CLONE_NEWNET) as number) < 0) {
        // Staying in the wrong namespace would silently misdirect every later call.
        throw new StrandError('internal', `cannot return to the original network namespace: ${errnoName(errno())}`);
      }
    }
  } finally {
    home.close();
  }
}

/** Makes /run/netns a shared mount point, as iproute2 does, so bind mounts propagate. */
function prepareRunDir(): void {
  mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  for (let attempt = 0; attempt < 2; attempt++) {
    if ((libc.mount('', NETNS_RUN_DIR, 'none', MS_SHARED | MS_REC, null) as number) === 0) return;
    const e = errno();
    if (e !== EINVAL || attempt > 0) throw syscallError(e, { action: 'make shared', object: NETNS_RUN_DIR });
    // Not a mount point yet: bind it onto itself, then try again.
    if ((libc.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', MS_BIND | MS_REC, null) as number) < 0) {
      throw syscallError(errno(), { action: 'bind-mount', object: NETNS_RUN_DIR });
    }
  }
}

/**
 * Creates a named namespace the way `ip netns add` does: a new namespace made
 * by unshare on this thread, bind-mounted on /run/netns/NAME to keep it alive.
 */
export function createNetns(name: string): NetNs {
  validateNetnsName(name);
  prepareRunDir();
  const path = join(NETNS_RUN_DIR, name);
  const object = `network namespace "${name}"`;
  const placeholder = libc.open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0) as number;
  if (placeholder < 0) throw syscallError(errno(), { action: 'create', object });
  libc.close(placeholder);

  const home = currentNetns();
  let mounted = false;
  try {
    if ((libc.unshare(CLONE_NEWNET) as number) < 0) throw syscallError(errno(), { action: 'create', object });
    try {
      if ((libc.mount('/proc/thread-self/ns/net', path, 'none', MS_BIND, null) as number) < 0) {
        throw syscallError(errno(), { action: 'bind-mount', object });
      }
      mounted = true;
    } finally {
      if ((libc.setns(home.fd, CLONE_NEWNET) as number) < 0) {
        throw new StrandError('internal', `cannot return to the original network namespace: ${errnoName(errno())}`);
      }
    }
    return openNetns(path);
  } catch (err) {
    if (mounted) libc.umount2(path, MNT_DETACH);
    libc.unlink(path);
    throw err;
  } finally {
    home.close();
  }
}

/** Removes a named namespace; succeeds when it is already gone. */
export function deleteNetns(name: string): void {
  validateNetnsName(name);
  const path = join(NETNS_RUN_DIR, name);
  if ((libc.umount2(path, MNT_DETACH) as number) < 0) {
    const e = errno();
    if (e !== EINVAL && e !== ENOENT) throw syscallError(e, { action: 'unmount', object: `network namespace "${name}"` });
  }
  if ((libc.unlink(path) as number) < 0) {
    const e = errno();
    if (e !== ENOENT) throw syscallError(e, { action: 'remove', object: `network namespace "${name}"` });
  }
}

/** The names under /run/netns. */
export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_RUN_DIR).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function sysctlPath(key: string): string {
  if (!/^[A-Za-z0-9_.\-/]+$/.test(key) || key.includes('..')) {
    throw new StrandError('invalid', `invalid sysctl name "${key}"`);
  }
  // net.ipv4.conf.eth0.forwarding → /proc/sys/net/ipv4/conf/eth0/forwarding; a slash form is taken as is.
  return '/proc/sys/' + (key.includes('/') ? key.replace(/^\/?(proc\/sys\/)?/, '') : key.replace(/\./g, '/'));
}

function inNs<T>(ns: NetNs | undefined, fn: () => T): T {
  return ns ? withNetns(ns, fn) : fn();
}

/** Reads a sysctl (e.g. "net.ipv4.ip_forward") as the namespace sees it. */
export function readSysctl(key: string, ns?: NetNs): string {
  const path = sysctlPath(key);
  try {
    return inNs(ns, () => readFileSync(path, 'utf8')).trim();
  } catch (err) {
    throw sysctlError(err, 'read', key);
  }
}

/** Writes a sysctl inside the namespace (or the current one). */
export function writeSysctl(key: string, value: string | number, ns?: NetNs): void {
  const path = sysctlPath(key);
  try {
    inNs(ns, () => writeFileSync(path, String(value)));
  } catch (err) {
    throw sysctlError(err, `write "${value}" to`, key);
  }
}

function sysctlError(err: unknown, action: string, key: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new StrandError('not-found', `ENOENT: sysctl "${key}" does not exist`);
  if (code) return new StrandError(code === 'EINVAL' ? 'invalid' : 'kernel', `${code}: cannot ${action} sysctl "${key}"`, { cause: err });
  return err;
}
