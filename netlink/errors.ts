// Kernel refusals as typed errors that carry the errno name and the object,
// e.g. `EEXIST: link "br-1" already exists`.
import { StrandError, type ErrorCode } from '../common/errors.js';
import { errno, errnoName, errnoText } from '../common/libc.js';

const CODE_BY_ERRNO: Record<string, ErrorCode> = {
  EEXIST: 'exists',
  ENOENT: 'not-found',
  ENODEV: 'not-found',
  ESRCH: 'not-found',
  EADDRNOTAVAIL: 'not-found',
  EINVAL: 'invalid',
  ERANGE: 'invalid',
  EOPNOTSUPP: 'invalid',
  ENOTSUP: 'invalid',
  EAFNOSUPPORT: 'invalid',
  ENETUNREACH: 'invalid',
  EBUSY: 'in-use',
  EAGAIN: 'unavailable',
  ENOBUFS: 'unavailable',
};

/** What a request was doing, for the message: `create` + `link "br-1"`. */
export interface Subject {
  action: string;
  object: string;
}

export class KernelError extends StrandError {
  readonly errno: number;
  readonly errnoName: string;
  /** The kernel's extended-ack text, when it gave one. */
  readonly kernelMessage?: string;

  constructor(errno: number, subject: Subject, kernelMessage?: string) {
    const name = errnoName(errno);
    let text: string;
    if (name === 'EEXIST') text = `${subject.object} already exists`;
    else if (name === 'ENODEV' || name === 'ESRCH' || (name === 'ENOENT' && !subject.action.startsWith('create')))
      text = `${subject.object} does not exist`;
    else text = `cannot ${subject.action} ${subject.object}: ${errnoText(errno)}`;
    if (kernelMessage) text += ` (kernel: ${kernelMessage})`;
    super(CODE_BY_ERRNO[name] ?? 'kernel', `${name}: ${text}`);
    this.name = 'KernelError';
    this.errno = errno;
    this.errnoName = name;
    if (kernelMessage !== undefined) this.kernelMessage = kernelMessage;
  }
}

/** A libc call that returned -1: errno into a typed error. */
export function syscallError(errno: number, subject: Subject): KernelError {
  return new KernelError(errno, subject);
}

/** Throws the typed error for a libc call's negative return, naming what it was doing. */
export function checkSyscall(rc: number, action: string, object: string): void {
  if (rc < 0) throw syscallError(errno(), { action, object });
}
