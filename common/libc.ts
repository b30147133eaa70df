// The few libc calls strand needs, through koffi: the one binding of libc in
// the project (the kernel layer's sockets and namespaces, the lock files of
// the store and the host). Synchronous by design: a netlink request is
// answered while the send call runs, and setns only affects the calling
// thread, so nothing else may run in between.
import koffi from 'koffi';
import { constants } from 'node:os';

const lib = koffi.load('libc.so.6');

export const libc = {
  socket: lib.func('int socket(int domain, int type, int protocol)'),
  bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
  setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
  send: lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
  recv: lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
  close: lib.func('int close(int fd)'),
  setns: lib.func('int setns(int fd, int nstype)'),
  unshare: lib.func('int unshare(int flags)'),
  open: lib.func('int open(const char *path, int flags, uint32_t mode)'),
  mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)'),
  umount2: lib.func('int umount2(const char *target, int flags)'),
  unlink: lib.func('int unlink(const char *path)'),
  gettid: lib.func('int gettid(void)'),
  sethostname: lib.func('int sethostname(const char *name, size_t len)'),
  flock: lib.func('int flock(int fd, int operation)'),
} as const;

export function errno(): number {
  return koffi.errno();
}

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(constants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}
errnoNames.set(11, 'EAGAIN'); // EWOULDBLOCK shares the number; EAGAIN is what people know

/** The symbolic name of an errno value, e.g. 17 → "EEXIST". */
export function errnoName(num: number): string {
  return errnoNames.get(num) ?? `errno ${num}`;
}

const strerror = lib.func('const char *strerror(int errnum)');

/** The C library's text for an errno value, e.g. "File exists". */
export function errnoText(num: number): string {
  return strerror(num) as string;
}
