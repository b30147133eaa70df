// Links: list, get, add (veth, bridge, vxlan, macvlan, dummy), delete, and
// change state, MTU, MAC, master, name and namespace.
import { StrandError } from '../common/errors.js';
import {
  AF_UNSPEC, IFINFOMSG_LEN, IFF_UP, IFF_PROMISC, IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES, IFLA_LINK, IFLA_MASTER, IFLA_OPERSTATE,
  IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_LINK_NETNSID, IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND,
  VETH_INFO_PEER, IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6, IFLA_VXLAN_GROUP,
  IFLA_VXLAN_GROUP6, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PROXY, IFLA_VXLAN_PORT, IFLA_VXLAN_TTL, IFLA_MACVLAN_MODE, MACVLAN_MODE, OPERSTATES,
  RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK, NLM_F_CREATE, NLM_F_EXCL, IFNAMSIZ, IFLA_PROMISCUITY, IFLA_GROUP,
  AF_BRIDGE, IFLA_PROTINFO, NLA_F_NESTED, IFLA_BRPORT_MODE, IFLA_BRPORT_LEARNING, IFLA_BRPORT_ISOLATED,
} from './constants.js';
import { AttrWriter, parseAttrs, attrStr, attrU32, attrI32, attrU8, attrU16be, type Attrs } from './message.js';
import { bytesToIp, bytesToMac, ipFamily, ipToBytes, macToBytes } from './address-bytes.js';
import type { RtnlSocket } from './socket.js';
import type { NetNs } from './namespace.js';
import { KernelError } from './errors.js';

export type MacvlanMode = keyof typeof MACVLAN_MODE;
// This kernel has no 802.1q, ipvlan or dummy link types; strand uses only these.
export const LINK_KINDS = ['veth', 'bridge', 'vxlan', 'macvlan'] as const;
export type LinkKind = (typeof LINK_KINDS)[number];

/** A link as the kernel reports it. */
export interface Link {
  index: number;
  name: string;
  /** rtnl kind (veth, bridge, vxlan, ...); absent for physical devices and loopback. */
  kind?: string;
  /** Kind of the master this link is enslaved to (e.g. "bridge"). */
  slaveKind?: string;
  up: boolean;
  operState: string;
  mtu: number;
  mac?: string;
  master?: number;
  /** The parent (veth peer, macvlan/vxlan lower device) index, maybe in another namespace. */
  parentIndex?: number;
  /** Set when the parent is in another namespace (its id as this namespace knows it). */
  parentNetnsId?: number;
  promiscuity?: number;
  /** Device group (0 unless someone set one). */
  group: number;
  vxlan?: { vni: number; local?: string; remote?: string; underlay?: number; port: number; learning: boolean; proxy?: boolean; ttl?: number };
  macvlan?: { mode: MacvlanMode | 'source' | 'unknown' };
}

const MAX_QUEUES = 4096; // the kernel's own limit for a veth

function queueAttrs(w: AttrWriter, queues: number, name: string): void {
  if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) {
    throw new StrandError('invalid', `invalid queue count ${queues} for link "${name}": use 1 to ${MAX_QUEUES}`);
  }
  w.u32(IFLA_NUM_TX_QUEUES, queues).u32(IFLA_NUM_RX_QUEUES, queues);
}

/** A link, by name or by index. */
export type LinkRef = string | number;

interface CommonSpec {
  name: string;
  mtu?: number;
  mac?: string;
  up?: boolean;
  master?: LinkRef;
  /** Create the link straight into this namespace. */
  netns?: NetNs;
}

export type LinkSpec =
  // No `up` for the peer: the kernel refuses to open it before the pair is joined (ENOTCONN);
  // bring it up afterwards from its own namespace.
  | (CommonSpec & {
      kind: 'veth';
      peer: { name: string; mac?: string; mtu?: number; netns?: NetNs };
      /** Transmit and receive queues of each end (1 by default): what per-CPU steering needs (cpu-steering.ts). */
      queues?: number;
    })
  | (CommonSpec & { kind: 'bridge' })
  | (CommonSpec & {
      kind: 'vxlan';
      vni: number;
      /** Local VTEP address. */
      local?: string;
      /** A single remote VTEP or multicast group; omit it to rely on FDB entries only. */
      remote?: string;
      /** Underlay device. */
      underlay?: LinkRef;
      /** UDP destination port (4789, the IANA port, by default). */
      port?: number;
      learning?: boolean;
      /** Answer ARP/NDP from the device's own neighbour table instead of sending the request out. */
      proxy?: boolean;
      ttl?: number;
    })
  | (CommonSpec & { kind: 'macvlan'; parent: LinkRef; mode?: MacvlanMode });

export interface LinkChange {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** A bridge to enslave to, or null to release from its master. */
  master?: LinkRef | null;
  name?: string;
  /** Move the link into another namespace. */
  netns?: NetNs;
  /** Device group. */
  group?: number;
  /** Promiscuous mode (IFF_PROMISC). */
  promisc?: boolean;
}

/** Interface names: at most 15 bytes, no '/', ':' or white space, not "." or "..". */
export function validateLinkName(name: string): void {
  const bytes = Buffer.byteLength(name);
  let problem: string | undefined;
  if (bytes === 0) problem = 'it is empty';
  else if (bytes >= IFNAMSIZ) problem = `it is ${bytes} bytes long; the kernel allows at most ${IFNAMSIZ - 1}`;
  else if (name === '.' || name === '..') problem = 'it is reserved';
  else if (/[/:\s]/.test(name)) problem = "it contains '/', ':' or white space";
  if (problem) throw new StrandError('invalid', `invalid interface name "${name}": ${problem}`);
}

function ifinfomsg(index = 0, flags = 0, change = 0, family = AF_UNSPEC): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

function validMtu(mtu: number, what: string): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new StrandError('invalid', `invalid MTU ${mtu} for ${what}: must be an integer from 68 to 65535`);
  }
  return mtu;
}

export class Links {
  constructor(private readonly sock: RtnlSocket) {}

  list(): Link[] {
    return this.sock.dump(RTM_GETLINK, ifinfomsg(), { action: 'list', object: 'links' }).map((r) => decodeLink(r.body));
  }

  /** The link, or undefined when there is none of that name or index. */
  find(ref: LinkRef): Link | undefined {
    try {
      return this.get(ref);
    } catch (err) {
      if (err instanceof StrandError && err.code === 'not-found') return undefined;
      throw err;
    }
  }

  get(ref: LinkRef): Link {
    const w = new AttrWriter();
    if (typeof ref === 'string') {
      validateLinkName(ref);
      w.str(IFLA_IFNAME, ref);
    }
    const body = Buffer.concat([ifinfomsg(typeof ref === 'number' ? ref : 0), w.toBuffer()]);
    const [reply] = this.sock.request(RTM_GETLINK, 0, body, { action: 'get', object: describe(ref) });
    if (!reply) throw new StrandError('not-found', `ENODEV: ${describe(ref)} does not exist`);
    return decodeLink(reply.body);
  }

  /** The index of a link given by name (one lookup) or by index (none). */
  index(ref: LinkRef): number {
    return typeof ref === 'number' ? ref : this.get(ref).index;
  }

  /**
   * Creates a link in one request, so the kernel either makes all of it or
   * nothing: a veth whose peer cannot be placed does not exist afterwards.
   */
  add(spec: LinkSpec): void {
    if (!(LINK_KINDS as readonly string[]).includes(spec.kind)) {
      throw new StrandError('invalid', `unknown link kind "${(spec as { kind: string }).kind}" for link "${spec.name}": use one of ${LINK_KINDS.join(', ')}`);
    }
    validateLinkName(spec.name);
    const w = new AttrWriter().str(IFLA_IFNAME, spec.name);
    if (spec.mtu !== undefined) w.u32(IFLA_MTU, validMtu(spec.mtu, `link "${spec.name}"`));
    if (spec.mac !== undefined) w.bytes(IFLA_ADDRESS, macToBytes(spec.mac));
    if (spec.master !== undefined) w.u32(IFLA_MASTER, this.index(spec.master));
    if (spec.netns) w.u32(IFLA_NET_NS_FD, spec.netns.fd);
    if (spec.kind === 'macvlan') w.u32(IFLA_LINK, this.index(spec.parent));
    if (spec.kind === 'veth' && spec.queues !== undefined) queueAttrs(w, spec.queues, spec.name);
    w.nested(IFLA_LINKINFO, (info) => {
      info.str(IFLA_INFO_KIND, spec.kind);
      const data = this.kindData(spec);
      if (data) info.bytes(IFLA_INFO_DATA, data);
    });
    const up = spec.up ? IFF_UP : 0;
    const body = Buffer.concat([ifinfomsg(0, up, up), w.toBuffer()]);
    const object = spec.kind === 'veth' ? `veth pair "${spec.name}"/"${spec.peer.name}"` : `link "${spec.name}"`;
    this.sock.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, { action: `create ${spec.kind}`, object });
  }

  private kindData(spec: LinkSpec): Buffer | undefined {
    const data = new AttrWriter();
    switch (spec.kind) {
      case 'veth': {
        const peer = spec.peer;
        validateLinkName(peer.name);
        data.nestedWithHeader(VETH_INFO_PEER, ifinfomsg(), (p) => {
          p.str(IFLA_IFNAME, peer.name);
          if (peer.mtu !== undefined) p.u32(IFLA_MTU, validMtu(peer.mtu, `link "${peer.name}"`));
          if (peer.mac !== undefined) p.bytes(IFLA_ADDRESS, macToBytes(peer.mac));
          if (peer.netns) p.u32(IFLA_NET_NS_FD, peer.netns.fd);
          if (spec.queues !== undefined) queueAttrs(p, spec.queues, peer.name);
        });
        break;
      }
      case 'vxlan': {
        if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni > 0xffffff) {
          throw new StrandError('invalid', `invalid VNI ${spec.vni} for vxlan "${spec.name}": must be 0 to 16777215`);
        }
        data.u32(IFLA_VXLAN_ID, spec.vni);
        if (spec.local) data.bytes(ipFamily(spec.local) === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, ipToBytes(spec.local));
        if (spec.remote) data.bytes(ipFamily(spec.remote) === 4 ? IFLA_VXLAN_GROUP : IFLA_VXLAN_GROUP6, ipToBytes(spec.remote));
        if (spec.underlay !== undefined) data.u32(IFLA_VXLAN_LINK, this.index(spec.underlay));
        const port = spec.port ?? 4789;
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
          throw new StrandError('invalid', `invalid UDP port ${port} for vxlan "${spec.name}"`);
        }
        data.u16be(IFLA_VXLAN_PORT, port);
        data.u8(IFLA_VXLAN_LEARNING, spec.learning ? 1 : 0);
        if (spec.proxy) data.u8(IFLA_VXLAN_PROXY, 1);
        if (spec.ttl !== undefined) data.u8(IFLA_VXLAN_TTL, spec.ttl);
        break;
      }
      case 'macvlan': {
        const mode = spec.mode ?? 'bridge';
        if (!(mode in MACVLAN_MODE)) {
          throw new StrandError('invalid', `invalid macvlan mode "${mode}" for link "${spec.name}": use one of ${Object.keys(MACVLAN_MODE).join(', ')}`);
        }
        data.u32(IFLA_MACVLAN_MODE, MACVLAN_MODE[mode]);
        break;
      }
      default:
        return undefined;
    }
    return data.toBuffer();
  }

  /** Removes a link (a veth takes its peer along). With missingOk, a link already gone is success. */
  delete(ref: LinkRef, options: { missingOk?: boolean } = {}): void {
    const w = new AttrWriter();
    if (typeof ref === 'string') {
      validateLinkName(ref);
      w.str(IFLA_IFNAME, ref);
    }
    const body = Buffer.concat([ifinfomsg(typeof ref === 'number' ? ref : 0), w.toBuffer()]);
    try {
      this.sock.request(RTM_DELLINK, 0, body, { action: 'delete', object: describe(ref) });
    } catch (err) {
      if (options.missingOk && err instanceof KernelError && err.code === 'not-found') return;
      throw err;
    }
  }

  /**
   * Removes many links in one kernel transaction. Each deletion alone waits
   * for an RCU grace period (about 16 ms here); the kernel's group delete
   * unregisters them all behind a single one. The links are first moved into
   * a device group no other link uses, then that group is deleted.
   */
  deleteMany(refs: LinkRef[], options: { missingOk?: boolean } = {}): void {
    if (refs.length === 0) return;
    const used = new Set(this.list().map((l) => l.group));
    let group: number;
    do group = 0x40000000 + Math.floor(Math.random() * 0x3fffffff);
    while (used.has(group));
    let marked = 0;
    for (const ref of refs) {
      try {
        this.set(ref, { group });
        marked++;
      } catch (err) {
        if (!(options.missingOk && err instanceof KernelError && err.code === 'not-found')) {
          this.releaseGroup(group);
          throw err;
        }
      }
    }
    if (marked === 0) return;
    const body = Buffer.concat([ifinfomsg(), new AttrWriter().u32(IFLA_GROUP, group).toBuffer()]);
    try {
      this.sock.request(RTM_DELLINK, 0, body, { action: 'delete', object: `${marked} links` });
    } catch (err) {
      this.releaseGroup(group);
      throw err;
    }
  }

  /** Puts links left in a temporary group back into the default one. */
  private releaseGroup(group: number): void {
    for (const link of this.list()) if (link.group === group) this.set(link.index, { group: 0 });
  }

  /**
   * Bridge-port settings of a link enslaved to a bridge: hairpin (send a frame
   * back out the port it came in, so a container reaches its own published
   * port), MAC learning, and isolation from other isolated ports.
   */
  setBridgePort(ref: LinkRef, port: { hairpin?: boolean; learning?: boolean; isolated?: boolean }): void {
    const index = this.index(ref);
    const w = new AttrWriter().nested(IFLA_PROTINFO | NLA_F_NESTED, (p) => {
      if (port.hairpin !== undefined) p.u8(IFLA_BRPORT_MODE, port.hairpin ? 1 : 0);
      if (port.learning !== undefined) p.u8(IFLA_BRPORT_LEARNING, port.learning ? 1 : 0);
      if (port.isolated !== undefined) p.u8(IFLA_BRPORT_ISOLATED, port.isolated ? 1 : 0);
    });
    const body = Buffer.concat([ifinfomsg(index, 0, 0, AF_BRIDGE), w.toBuffer()]);
    this.sock.request(RTM_SETLINK, 0, body, { action: 'set bridge-port options of', object: describe(ref) });
  }

  /** Applies every change in one request. */
  set(ref: LinkRef, change: LinkChange): void {
    const w = new AttrWriter();
    if (typeof ref === 'string') {
      validateLinkName(ref);
      w.str(IFLA_IFNAME, ref);
    }
    if (change.name !== undefined) {
      validateLinkName(change.name);
      // Renaming by name needs the index: IFLA_IFNAME then carries the new name.
      if (typeof ref === 'string') return this.set(this.index(ref), change);
      w.str(IFLA_IFNAME, change.name);
    }
    if (change.mtu !== undefined) w.u32(IFLA_MTU, validMtu(change.mtu, describe(ref)));
    if (change.mac !== undefined) w.bytes(IFLA_ADDRESS, macToBytes(change.mac));
    if (change.master !== undefined) w.u32(IFLA_MASTER, change.master === null ? 0 : this.index(change.master));
    if (change.netns) w.u32(IFLA_NET_NS_FD, change.netns.fd);
    if (change.group !== undefined) w.u32(IFLA_GROUP, change.group);
    const flags = (change.up ? IFF_UP : 0) | (change.promisc ? IFF_PROMISC : 0);
    const mask = (change.up === undefined ? 0 : IFF_UP) | (change.promisc === undefined ? 0 : IFF_PROMISC);
    const body = Buffer.concat([ifinfomsg(typeof ref === 'number' ? ref : 0, flags, mask), w.toBuffer()]);
    this.sock.request(RTM_SETLINK, 0, body, { action: 'change', object: describe(ref) });
  }
}

function describe(ref: LinkRef): string {
  return typeof ref === 'number' ? `link with index ${ref}` : `link "${ref}"`;
}

function decodeLink(body: Buffer): Link {
  const flags = body.readUInt32LE(8);
  const attrs = parseAttrs(body, IFINFOMSG_LEN);
  const link: Link = {
    index: body.readInt32LE(4),
    name: attrStr(attrs, IFLA_IFNAME) ?? '',
    up: (flags & IFF_UP) !== 0,
    operState: OPERSTATES[attrU8(attrs, IFLA_OPERSTATE) ?? 0] ?? 'unknown',
    mtu: attrU32(attrs, IFLA_MTU) ?? 0,
    group: attrU32(attrs, IFLA_GROUP) ?? 0,
  };
  const mac = attrs.get(IFLA_ADDRESS);
  if (mac && mac.length === 6) link.mac = bytesToMac(mac);
  const master = attrU32(attrs, IFLA_MASTER);
  if (master) link.master = master;
  const parent = attrI32(attrs, IFLA_LINK);
  const netnsId = attrI32(attrs, IFLA_LINK_NETNSID);
  // A device names itself as its link; a parent in another namespace may have the same index number.
  if (parent !== undefined && (parent !== link.index || netnsId !== undefined)) link.parentIndex = parent;
  if (netnsId !== undefined) link.parentNetnsId = netnsId;
  const promiscuity = attrU32(attrs, IFLA_PROMISCUITY);
  if (promiscuity !== undefined) link.promiscuity = promiscuity;
  const info = attrs.get(IFLA_LINKINFO);
  if (info) decodeLinkInfo(link, parseAttrs(info));
  return link;
}

function decodeLinkInfo(link: Link, info: Attrs): void {
  const kind = attrStr(info, IFLA_INFO_KIND);
  if (kind) link.kind = kind;
  const slaveKind = attrStr(info, IFLA_INFO_SLAVE_KIND);
  if (slaveKind) link.slaveKind = slaveKind;
  const raw = info.get(IFLA_INFO_DATA);
  if (!raw) return;
  const data = parseAttrs(raw);
  if (kind === 'vxlan') {
    const local = data.get(IFLA_VXLAN_LOCAL) ?? data.get(IFLA_VXLAN_LOCAL6);
    const remote = data.get(IFLA_VXLAN_GROUP) ?? data.get(IFLA_VXLAN_GROUP6);
    link.vxlan = {
      vni: attrU32(data, IFLA_VXLAN_ID) ?? 0,
      port: attrU16be(data, IFLA_VXLAN_PORT) ?? 0,
      learning: (attrU8(data, IFLA_VXLAN_LEARNING) ?? 0) !== 0,
      proxy: (attrU8(data, IFLA_VXLAN_PROXY) ?? 0) !== 0,
      ...(local ? { local: bytesToIp(local) } : {}),
      ...(remote ? { remote: bytesToIp(remote) } : {}),
      ...(attrU32(data, IFLA_VXLAN_LINK) ? { underlay: attrU32(data, IFLA_VXLAN_LINK)! } : {}),
      ...(attrU8(data, IFLA_VXLAN_TTL) !== undefined ? { ttl: attrU8(data, IFLA_VXLAN_TTL)! } : {}),
    };
  } else if (kind === 'macvlan') {
    const mode = attrU32(data, IFLA_MACVLAN_MODE);
    const name = (Object.keys(MACVLAN_MODE) as MacvlanMode[]).find((k) => MACVLAN_MODE[k] === mode);
    link.macvlan = { mode: name ?? (mode === 16 ? 'source' : 'unknown') };
  }
}
