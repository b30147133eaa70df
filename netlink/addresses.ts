// IPv4 and IPv6 interface addresses: add, delete, list.
import {
  AF_INET, AF_INET6, AF_UNSPEC, IFADDRMSG_LEN, IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_FLAGS,
  IFA_F_NODAD, RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, SCOPES,
} from './constants.js';
import { AttrWriter, parseAttrs, attrStr, attrU32 } from './message.js';
import { bytesToIp, ipToBytes, parsePrefix, type Family } from './address-bytes.js';
import type { RtnlSocket } from './socket.js';
import type { LinkRef, Links } from './links.js';
import { KernelError } from './errors.js';

export interface Address {
  family: Family;
  /** "10.0.0.2/24" */
  cidr: string;
  ip: string;
  prefixLen: number;
  index: number;
  scope: number;
  label?: string;
  flags: number;
}

export interface AddAddressOptions {
  /** Skip IPv6 duplicate address detection (the address is usable at once). */
  noDad?: boolean;
  /** Replace an existing equal address instead of failing with EEXIST. */
  replace?: boolean;
}

function ifaddrmsg(family: number, prefixLen: number, index: number, scope = 0): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLen, 1);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

const familyCode = (f: Family): number => (f === 4 ? AF_INET : AF_INET6);

export class Addresses {
  constructor(
    private readonly sock: RtnlSocket,
    private readonly links: Links,
  ) {}

  add(dev: LinkRef, cidr: string, options: AddAddressOptions = {}): void {
    const { ip, prefixLen, family } = parsePrefix(cidr);
    const index = this.links.index(dev);
    const bytes = ipToBytes(ip);
    const w = new AttrWriter().bytes(IFA_LOCAL, bytes).bytes(IFA_ADDRESS, bytes);
    if (family === 4 && prefixLen < 31) w.bytes(IFA_BROADCAST, broadcastOf(bytes, prefixLen));
    if (options.noDad) w.u32(IFA_FLAGS, IFA_F_NODAD);
    const flags = NLM_F_CREATE | (options.replace ? NLM_F_REPLACE : NLM_F_EXCL);
    const body = Buffer.concat([ifaddrmsg(familyCode(family), prefixLen, index, SCOPES.universe), w.toBuffer()]);
    this.sock.request(RTM_NEWADDR, flags, body, { action: 'add', object: `address ${cidr} on ${devName(dev)}` });
  }

  /** Removes an address; with missingOk an address already gone is success. */
  delete(dev: LinkRef, cidr: string, options: { missingOk?: boolean } = {}): void {
    const { ip, prefixLen, family } = parsePrefix(cidr);
    const index = this.links.index(dev);
    const bytes = ipToBytes(ip);
    const w = new AttrWriter().bytes(IFA_LOCAL, bytes).bytes(IFA_ADDRESS, bytes);
    const body = Buffer.concat([ifaddrmsg(familyCode(family), prefixLen, index), w.toBuffer()]);
    try {
      this.sock.request(RTM_DELADDR, 0, body, { action: 'delete', object: `address ${cidr} on ${devName(dev)}` });
    } catch (err) {
      if (options.missingOk && err instanceof KernelError && err.code === 'not-found') return;
      throw err;
    }
  }

  list(filter: { dev?: LinkRef; family?: Family } = {}): Address[] {
    const index = filter.dev === undefined ? undefined : this.links.index(filter.dev);
    const family = filter.family === undefined ? AF_UNSPEC : familyCode(filter.family);
    const replies = this.sock.dump(RTM_GETADDR, ifaddrmsg(family, 0, 0), { action: 'list', object: 'addresses' });
    const out: Address[] = [];
    for (const { body } of replies) {
      const fam = body.readUInt8(0) === AF_INET ? 4 : 6;
      const idx = body.readUInt32LE(4);
      if (index !== undefined && idx !== index) continue;
      if (filter.family !== undefined && fam !== filter.family) continue;
      const attrs = parseAttrs(body, IFADDRMSG_LEN);
      const raw = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
      if (!raw) continue;
      const ip = bytesToIp(raw);
      const prefixLen = body.readUInt8(1);
      const addr: Address = {
        family: fam, ip, prefixLen, cidr: `${ip}/${prefixLen}`, index: idx,
        scope: body.readUInt8(3), flags: attrU32(attrs, IFA_FLAGS) ?? body.readUInt8(2),
      };
      const label = attrStr(attrs, IFA_LABEL);
      if (label) addr.label = label;
      out.push(addr);
    }
    return out;
  }
}

function broadcastOf(ip: Buffer, prefixLen: number): Buffer {
  const host = prefixLen === 0 ? 0xffffffff : (1 << (32 - prefixLen)) - 1;
  const b = Buffer.alloc(4);
  b.writeUInt32BE((ip.readUInt32BE(0) | host) >>> 0);
  return b;
}

export function devName(dev: LinkRef): string {
  return typeof dev === 'number' ? `link with index ${dev}` : `link "${dev}"`;
}
