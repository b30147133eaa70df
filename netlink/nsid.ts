// Namespace ids: the number one namespace knows another by, as a veth whose
// peer lives elsewhere reports it (IFLA_LINK_NETNSID). RTM_GETNSID maps an
// open namespace handle to that number, so the namespace holding a veth's
// other end can be told apart from every other one for certain.
import { AF_UNSPEC } from './constants.js';
import { AttrWriter, attrI32, parseAttrs } from './message.js';
import type { RtnlSocket } from './socket.js';
import type { NetNs } from './namespace.js';

const RTM_GETNSID = 90;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;
/** struct rtgenmsg, padded to 4 bytes as the kernel reads it. */
const RTGENMSG_LEN = 4;

/** The id the socket's namespace gives `ns`, or undefined when it gave it none (nothing links the two). */
export function netnsIdOf(sock: RtnlSocket, ns: NetNs): number | undefined {
  const head = Buffer.alloc(RTGENMSG_LEN);
  head.writeUInt8(AF_UNSPEC, 0);
  const body = Buffer.concat([head, new AttrWriter().u32(NETNSA_FD, ns.fd).toBuffer()]);
  const [reply] = sock.request(RTM_GETNSID, 0, body, { action: 'look up the id of', object: `network namespace ${ns.path}` });
  const id = reply ? attrI32(parseAttrs(reply.body, RTGENMSG_LEN), NETNSA_NSID) : undefined;
  return id === undefined || id < 0 ? undefined : id;
}
