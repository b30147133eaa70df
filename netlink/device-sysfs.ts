// Device settings that only sysfs offers: no netlink attribute carries a
// queue's RPS or XPS CPU mask. /sys shows the devices of the network namespace it was
// mounted in, not the caller's (a daemon started with `nsenter --net` sees the
// root namespace's devices there, and could write a same-named one). So the
// calling thread steps into a mount namespace of its own, mounts a sysfs of the
// network namespace it is in over /sys, writes, and steps back; the private
// mount namespace goes away with its last reference.
import { writeFileSync } from 'node:fs';
import { StrandError } from '../common/errors.js';
import { CLONE_NEWNS, MS_PRIVATE, MS_REC, O_CLOEXEC, O_RDONLY } from './constants.js';
import { libc, errno, errnoName } from '../common/libc.js';
import { checkSyscall, syscallError } from './errors.js';
import { validateLinkName } from './links.js';
import { withNetns, type NetNs } from './namespace.js';

/** Runs fn with /sys showing the devices of the network namespace this thread is in. */
function withOwnSysfs<T>(fn: () => T): T {
  const home = libc.open('/proc/thread-self/ns/mnt', O_RDONLY | O_CLOEXEC, 0) as number;
  if (home < 0) throw syscallError(errno(), { action: 'open', object: "this thread's mount namespace" });
  const cwd = process.cwd();
  try {
    checkSyscall(libc.unshare(CLONE_NEWNS) as number, 'create', 'a mount namespace for sysfs');
    // Keep the sysfs mount from propagating back to the host's mount tree.
    checkSyscall(libc.mount(null, '/', null, MS_REC | MS_PRIVATE, null) as number, 'make private', 'the sysfs mount tree');
    checkSyscall(libc.mount('sysfs', '/sys', 'sysfs', 0, null) as number, 'mount', "this network namespace's sysfs");
    return fn();
  } finally {
    if ((libc.setns(home, CLONE_NEWNS) as number) < 0) {
      // Staying in the private mount namespace would hide mounts made later on the host.
      throw new StrandError('internal', `cannot return to this process's mount namespace: ${errnoName(errno())}`);
    }
    libc.close(home);
    // Returning to a mount namespace resets the thread's working directory.
    process.chdir(cwd);
  }
}

/** Writes /sys/class/net/DEVICE/FILE for each [file, value], for a device of `ns` (or of the namespace this thread is in). */
export function writeDeviceSysfs(device: string, entries: [file: string, value: string][], ns?: NetNs): void {
  validateLinkName(device);
  const write = () =>
    withOwnSysfs(() => {
      for (const [file, value] of entries) {
        try {
          writeFileSync(`/sys/class/net/${device}/${file}`, value);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          if (code === 'ENOENT') throw new StrandError('not-found', `device "${device}" has no ${file} here (no such device, or a kernel without that setting)`);
          throw new StrandError(code === 'EINVAL' ? 'invalid' : 'kernel', `${code}: cannot write "${value}" to ${file} of device "${device}"`, { cause: err });
        }
      }
    });
  if (ns) withNetns(ns, write);
  else write();
}
