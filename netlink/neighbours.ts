// Neighbour tables: permanent ARP/NDP entries, bridge FDB entries, and FDB
// entries on a vxlan device that send a MAC to a remote VTEP.
import {
  AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, NDMSG_LEN, NDA_DST, NDA_LLADDR, NDA_MASTER, NDA_VNI, NDA_VLAN,
  NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE, NTF_MASTER, NTF_SELF, RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH,
  NLM_F_CREATE, NLM_F_REPLACE, NLM_F_APPEND,
} from './constants.js';
import { AttrWriter, parseAttrs, attrU32 } from './message.js';
import { bytesToIp, bytesToMac, ipFamily, ipToBytes, macToBytes, type Family } from './address-bytes.js';
import type { RtnlSocket } from './socket.js';
import type { LinkRef, Links } from './links.js';
import { KernelError } from './errors.js';
import { devName } from './addresses.js';

export interface Neighbour {
  family: Family;
  ip: string;
  mac?: string;
  index: number;
  state: number;
  permanent: boolean;
}

export interface FdbEntry {
  mac: string;
  index: number;
  /** The remote VTEP, for entries on a vxlan device. */
  dst?: string;
  vni?: number;
  vlan?: number;
  master?: number;
  /** NTF_SELF: the entry lives in the device's own table (vxlan), not its master bridge's. */
  self: boolean;
  permanent: boolean;
  state: number;
  flags: number;
}

export interface FdbSpec {
  dev: LinkRef;
  mac: string;
  /** Remote VTEP address (vxlan devices). */
  dst?: string;
  vni?: number;
  /** Put the entry in the master bridge's table rather than the device's own. */
  master?: boolean;
  /** "permanent" (default) never ages; "static" is a fixed, non-local entry. */
  state?: 'permanent' | 'static';
}

function ndmsg(family: number, index: number, state: number, flags: number): Buffer {
  const b = Buffer.alloc(NDMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

const isGone = (err: unknown): boolean => err instanceof KernelError && err.code === 'not-found';

export class Neighbours {
  constructor(
    private readonly sock: RtnlSocket,
    private readonly links: Links,
  ) {}

  /** Adds or replaces a permanent IP → MAC entry (no ARP or NDP needed for that IP). */
  setPermanent(dev: LinkRef, ip: string, mac: string): void {
    const family = ipFamily(ip);
    const w = new AttrWriter().bytes(NDA_DST, ipToBytes(ip)).bytes(NDA_LLADDR, macToBytes(mac));
    const body = Buffer.concat([ndmsg(family === 4 ? AF_INET : AF_INET6, this.links.index(dev), NUD_PERMANENT, 0), w.toBuffer()]);
    this.sock.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body, { action: 'set', object: `neighbour ${ip} on ${devName(dev)}` });
  }

  delete(dev: LinkRef, ip: string, options: { missingOk?: boolean } = {}): void {
    const family = ipFamily(ip);
    const w = new AttrWriter().bytes(NDA_DST, ipToBytes(ip));
    const body = Buffer.concat([ndmsg(family === 4 ? AF_INET : AF_INET6, this.links.index(dev), 0, 0), w.toBuffer()]);
    try {
      this.sock.request(RTM_DELNEIGH, 0, body, { action: 'delete', object: `neighbour ${ip} on ${devName(dev)}` });
    } catch (err) {
      if (!(options.missingOk && isGone(err))) throw err;
    }
  }

  list(filter: { dev?: LinkRef; family?: Family } = {}): Neighbour[] {
    const index = filter.dev === undefined ? undefined : this.links.index(filter.dev);
    const fam = filter.family === undefined ? AF_UNSPEC : filter.family === 4 ? AF_INET : AF_INET6;
    const out: Neighbour[] = [];
    for (const { body } of this.sock.dump(RTM_GETNEIGH, ndmsg(fam, 0, 0, 0), { action: 'list', object: 'neighbours' })) {
      const family = body.readUInt8(0);
      if (family !== AF_INET && family !== AF_INET6) continue;
      const idx = body.readInt32LE(4);
      if (index !== undefined && idx !== index) continue;
      const attrs = parseAttrs(body, NDMSG_LEN);
      const dst = attrs.get(NDA_DST);
      if (!dst) continue;
      const state = body.readUInt16LE(8);
      const n: Neighbour = { family: family === AF_INET ? 4 : 6, ip: bytesToIp(dst), index: idx, state, permanent: (state & NUD_PERMANENT) !== 0 };
      const ll = attrs.get(NDA_LLADDR);
      if (ll && ll.length === 6) n.mac = bytesToMac(ll);
      out.push(n);
    }
    return out;
  }

  /**
   * Adds or replaces an FDB entry. On a vxlan device with dst, the MAC is sent
   * to that VTEP; the all-zero MAC appends a default destination instead.
   */
  addFdb(spec: FdbSpec): void {
    const { body, object } = this.fdbMessage(spec, true);
    const allZero = spec.mac === '00:00:00:00:00:00';
    this.sock.request(RTM_NEWNEIGH, NLM_F_CREATE | (allZero ? NLM_F_APPEND : NLM_F_REPLACE), body, { action: 'add', object });
  }

  deleteFdb(spec: FdbSpec, options: { missingOk?: boolean } = {}): void {
    const { body, object } = this.fdbMessage(spec, false);
    try {
      this.sock.request(RTM_DELNEIGH, 0, body, { action: 'delete', object });
    } catch (err) {
      if (!(options.missingOk && isGone(err))) throw err;
    }
  }

  private fdbMessage(spec: FdbSpec, withState: boolean): { body: Buffer; object: string } {
    const state = !withState ? 0 : spec.state === 'static' ? NUD_NOARP | NUD_REACHABLE : NUD_NOARP | NUD_PERMANENT;
    const flags = spec.master ? NTF_MASTER : NTF_SELF;
    const w = new AttrWriter().bytes(NDA_LLADDR, macToBytes(spec.mac));
    if (spec.dst) w.bytes(NDA_DST, ipToBytes(spec.dst));
    if (spec.vni !== undefined) w.u32(NDA_VNI, spec.vni);
    const body = Buffer.concat([ndmsg(AF_BRIDGE, this.links.index(spec.dev), state, flags), w.toBuffer()]);
    const object = `FDB entry ${spec.mac}${spec.dst ? ` dst ${spec.dst}` : ''} on ${devName(spec.dev)}`;
    return { body, object };
  }

  /** The bridge forwarding database, optionally of one device. */
  listFdb(filter: { dev?: LinkRef } = {}): FdbEntry[] {
    const index = filter.dev === undefined ? undefined : this.links.index(filter.dev);
    const out: FdbEntry[] = [];
    for (const { body } of this.sock.dump(RTM_GETNEIGH, ndmsg(AF_BRIDGE, 0, 0, 0), { action: 'list', object: 'FDB entries' })) {
      if (body.readUInt8(0) !== AF_BRIDGE) continue;
      const idx = body.readInt32LE(4);
      if (index !== undefined && idx !== index) continue;
      const attrs = parseAttrs(body, NDMSG_LEN);
      const ll = attrs.get(NDA_LLADDR);
      if (!ll || ll.length !== 6) continue;
      const state = body.readUInt16LE(8);
      const flags = body.readUInt8(10);
      const entry: FdbEntry = { mac: bytesToMac(ll), index: idx, self: (flags & NTF_SELF) !== 0, permanent: (state & NUD_PERMANENT) !== 0, state, flags };
      const dst = attrs.get(NDA_DST);
      if (dst) entry.dst = bytesToIp(dst);
      const vni = attrU32(attrs, NDA_VNI);
      if (vni !== undefined) entry.vni = vni;
      const vlan = attrs.get(NDA_VLAN);
      if (vlan && vlan.length >= 2) entry.vlan = vlan.readUInt16LE(0);
      const master = attrU32(attrs, NDA_MASTER);
      if (master) entry.master = master;
      out.push(entry);
    }
    return out;
  }
}
