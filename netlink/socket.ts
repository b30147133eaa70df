// One rtnetlink socket: numbered requests, ACKs, multi-part dumps, kernel
// error replies with their extended-ack text. Calls block the thread for the
// microseconds the kernel takes; rtnetlink answers within the send call.
import {
  AF_NETLINK, NETLINK_ROUTE, SOL_NETLINK, NETLINK_EXT_ACK, NETLINK_CAP_ACK, SOL_SOCKET, SO_RCVBUF,
  SO_RCVTIMEO, NLMSG_HDRLEN, NLMSG_ERROR, NLMSG_DONE, NLMSG_NOOP, NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP,
  NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSGERR_ATTR_MSG, NLM_F_DUMP_INTR,
} from './constants.js';
import { libc, errno } from '../common/libc.js';
import { KernelError, syscallError, type Subject } from './errors.js';
import { attrStr, parseAttrs } from './message.js';
import { StrandError } from '../common/errors.js';

const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const RECV_BUFFER = 1 << 18;
const EINTR = 4;

/** A reply message: its type and the bytes after the netlink header. */
export interface Reply {
  type: number;
  body: Buffer;
}

export class RtnlSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.alloc(RECV_BUFFER);
  private fd: number;

  /** Opens a socket in the calling thread's current network namespace. */
  constructor() {
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE) as number;
    if (fd < 0) throw syscallError(errno(), { action: 'open', object: 'rtnetlink socket' });
    this.fd = fd;
    try {
      const one = Buffer.alloc(4);
      one.writeInt32LE(1);
      // Extended acks give the kernel's reason; capped acks keep error replies short.
      this.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, one);
      this.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, one);
      const rcvbuf = Buffer.alloc(4);
      rcvbuf.writeInt32LE(RECV_BUFFER);
      this.setsockopt(SOL_SOCKET, SO_RCVBUF, rcvbuf);
      const timeout = Buffer.alloc(16); // struct timeval: a stuck kernel reply must not hang strand
      timeout.writeBigInt64LE(10n, 0);
      this.setsockopt(SOL_SOCKET, SO_RCVTIMEO, timeout);
      const addr = Buffer.alloc(12); // sockaddr_nl, pid 0: the kernel assigns one
      addr.writeUInt16LE(AF_NETLINK, 0);
      if ((libc.bind(fd, addr, addr.length) as number) < 0) throw syscallError(errno(), { action: 'bind', object: 'rtnetlink socket' });
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }

  private setsockopt(level: number, name: number, value: Buffer): void {
    if ((libc.setsockopt(this.fd, level, name, value, value.length) as number) < 0) {
      throw syscallError(errno(), { action: `set option ${name} on`, object: 'rtnetlink socket' });
    }
  }

  /** Sends a request and waits for its ACK; returns any reply messages before it. */
  request(type: number, flags: number, payload: Buffer, subject: Subject): Reply[] {
    return this.exchange(type, flags | NLM_F_ACK, payload, subject);
  }

  /** Sends a dump request and gathers every part until NLMSG_DONE. */
  dump(type: number, payload: Buffer, subject: Subject): Reply[] {
    for (let attempt = 0; ; attempt++) {
      try {
        return this.exchange(type, NLM_F_DUMP, payload, subject);
      } catch (err) {
        // The table changed mid-dump; the kernel asks us to start again.
        if (!(err instanceof DumpInterrupted) || attempt >= 5) throw err;
      }
    }
  }

  private exchange(type: number, flags: number, payload: Buffer, subject: Subject): Reply[] {
    if (this.fd < 0) throw new StrandError('internal', 'rtnetlink socket used after close');
    const seq = (this.seq = (this.seq + 1) & 0x7fffffff);
    const msg = Buffer.alloc(NLMSG_HDRLEN + payload.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeUInt16LE(type, 4);
    msg.writeUInt16LE(flags | NLM_F_REQUEST, 6);
    msg.writeUInt32LE(seq, 8);
    payload.copy(msg, NLMSG_HDRLEN);
    for (;;) {
      const sent = libc.send(this.fd, msg, msg.length, 0) as number;
      if (sent >= 0) break;
      const e = errno();
      if (e !== EINTR) throw syscallError(e, subject);
    }

    const replies: Reply[] = [];
    let interrupted = false;
    for (;;) {
      const n = Number(libc.recv(this.fd, this.buf, this.buf.length, 0));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw syscallError(e, { action: `wait for the kernel's answer to ${subject.action}`, object: subject.object });
      }
      let off = 0;
      while (off + NLMSG_HDRLEN <= n) {
        const len = this.buf.readUInt32LE(off);
        if (len < NLMSG_HDRLEN || off + len > n) break;
        const mtype = this.buf.readUInt16LE(off + 4);
        const mflags = this.buf.readUInt16LE(off + 6);
        const mseq = this.buf.readUInt32LE(off + 8);
        const body = this.buf.subarray(off + NLMSG_HDRLEN, off + len);
        off += (len + 3) & ~3;
        if (mseq !== seq) continue; // a late answer to an earlier, abandoned request
        if (mflags & NLM_F_DUMP_INTR) interrupted = true;
        if (mtype === NLMSG_NOOP) continue;
        if (mtype === NLMSG_ERROR) {
          const code = -body.readInt32LE(0);
          if (code === 0) return replies;
          throw new KernelError(code, subject, extAckMessage(body, mflags));
        }
        if (mtype === NLMSG_DONE) {
          if (interrupted) throw new DumpInterrupted();
          const code = body.length >= 4 ? -body.readInt32LE(0) : 0;
          if (code > 0) throw new KernelError(code, subject);
          return replies;
        }
        replies.push({ type: mtype, body: Buffer.from(body) });
      }
    }
  }

  close(): void {
    if (this.fd >= 0) {
      libc.close(this.fd);
      this.fd = -1;
    }
  }
}

class DumpInterrupted extends Error {}

/** The NLMSGERR_ATTR_MSG text after an error reply's echoed header. */
function extAckMessage(body: Buffer, flags: number): string | undefined {
  if (!(flags & NLM_F_ACK_TLVS)) return undefined;
  // struct nlmsgerr: int error + the request's nlmsghdr (+ its payload unless capped).
  const echoedLen = flags & NLM_F_CAPPED ? NLMSG_HDRLEN : body.readUInt32LE(4);
  return attrStr(parseAttrs(body, 4 + echoedLen), NLMSGERR_ATTR_MSG);
}
