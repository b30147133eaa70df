// Starting a process inside a sandbox: its network namespace, plus UTS and
// mount namespaces of its own (so hostname, /etc/hosts and /etc/resolv.conf
// are its own), or those of a process already in the sandbox.
//
// Node cannot run code in a child between fork and exec, so the calling
// thread itself steps into the namespaces, spawns (the child inherits the
// thread's namespaces), and steps back, all synchronously.
import { StrandError } from '../common/errors.js';
import { CLONE_FS, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, MS_BIND, MS_PRIVATE, MS_REC, O_RDONLY, O_CLOEXEC } from './constants.js';
import { libc, errno, errnoName } from '../common/libc.js';
import { checkSyscall, syscallError } from './errors.js';
import type { NetNs } from './namespace.js';

export interface SandboxNamespaces {
  net: NetNs;
  /** New UTS and mount namespaces with this hostname and these bind mounts (source → target)... */
  fresh?: { hostname: string; binds: [source: string, target: string][] };
  /** ...or the UTS and mount namespaces of this process (a sandbox's first process). */
  joinPid?: number;
}

const TYPES = [
  ['mnt', CLONE_NEWNS],
  ['uts', CLONE_NEWUTS],
  ['net', CLONE_NEWNET],
] as const;

function openNs(path: string, what: string): number {
  const fd = libc.open(path, O_RDONLY | O_CLOEXEC, 0) as number;
  if (fd < 0) throw syscallError(errno(), { action: 'open', object: what });
  return fd;
}

/** Runs spawnFn (which must start the process synchronously) with the thread inside the sandbox's namespaces. */
export function spawnInNamespaces<T>(target: SandboxNamespaces, spawnFn: () => T): T {
  // Only what changes is restored: setns into a mount namespace is refused unless this thread owns its filesystem context.
  const changes = target.joinPid !== undefined || target.fresh ? TYPES : TYPES.slice(2);
  const home = changes.map(([name, type]) => ({ type, fd: openNs(`/proc/thread-self/ns/${name}`, `this thread's ${name} namespace`) }));
  const joined: number[] = [];
  const cwd = process.cwd();
  try {
    if (target.joinPid !== undefined) {
      // Joining a mount namespace needs this thread's own filesystem context.
      checkSyscall(libc.unshare(CLONE_FS) as number, 'unshare', "this thread's filesystem context");
      for (const [name, type] of TYPES.slice(0, 2)) {
        const fd = openNs(`/proc/${target.joinPid}/ns/${name}`, `${name} namespace of process ${target.joinPid}`);
        joined.push(fd);
        checkSyscall(libc.setns(fd, type) as number, 'enter', `${name} namespace of process ${target.joinPid}`);
      }
    } else if (target.fresh) {
      // A mount namespace needs this thread's own filesystem context; unshare gives it one.
      checkSyscall(libc.unshare(CLONE_NEWUTS | CLONE_NEWNS) as number, 'create', 'UTS and mount namespaces');
      // Keep the bind mounts below from propagating back to the host.
      checkSyscall(libc.mount(null, '/', null, MS_REC | MS_PRIVATE, null) as number, 'make private', 'the sandbox mount tree');
      const name = target.fresh.hostname;
      checkSyscall(libc.sethostname(name, Buffer.byteLength(name)) as number, 'set', `hostname "${name}"`);
      for (const [source, dest] of target.fresh.binds) {
        checkSyscall(libc.mount(source, dest, null, MS_BIND, null) as number, `bind-mount ${source} on`, dest);
      }
    }
    checkSyscall(libc.setns(target.net.fd, CLONE_NEWNET) as number, 'enter', `network namespace ${target.net.path}`);
    return spawnFn();
  } finally {
    for (const { type, fd } of home) {
      if ((libc.setns(fd, type) as number) < 0) {
        // Staying in a sandbox's namespaces would misdirect everything strand does next.
        throw new StrandError('internal', `cannot return to this process's own namespaces: ${errnoName(errno())}`);
      }
      libc.close(fd);
    }
    for (const fd of joined) libc.close(fd);
    // Returning to the mount namespace resets the thread's working directory.
    process.chdir(cwd);
  }
}
