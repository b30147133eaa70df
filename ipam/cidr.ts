// IPv4 and IPv6 address and CIDR arithmetic on bigint, so one code path
// serves a /24 and a /48 alike without overflow or enumeration.
import { bytesToIp } from '../netlink/address-bytes.js';
import { StrandError } from '../common/errors.js';

export type Family = 4 | 6;

/** An address: its family and its value as an unsigned integer. */
export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

/** A network: `base` is the network address (host bits always zero). */
export interface Cidr {
  readonly family: Family;
  readonly base: bigint;
  readonly prefix: number;
}

export function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

function bad(what: string, value: string, why: string): StrandError {
  return new StrandError('invalid', `invalid ${what} ${JSON.stringify(value)}: ${why}`);
}

// Parses into a value, or returns the reason it is not an address.
function parseIpv4(s: string): bigint | string {
  const parts = s.split('.');
  if (parts.length !== 4) return 'an IPv4 address has four dot-separated numbers';
  let v = 0n;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return `${JSON.stringify(p)} is not a decimal number 0-255`;
    // Leading zeros are rejected (as Go does): some tools read them as octal.
    if (p.length > 1 && p[0] === '0') return `${JSON.stringify(p)} has a leading zero`;
    const n = Number(p);
    if (n > 255) return `octet ${n} is out of range 0-255`;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIpv6(s: string): bigint | string {
  if (s.includes('%')) return 'zone indexes are not allowed';
  const halves = s.split('::');
  if (halves.length > 2) return '"::" may appear only once';
  const groupsOf = (part: string, isLast: boolean): number[] | string => {
    if (part === '') return [];
    const out: number[] = [];
    const fields = part.split(':');
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      if (isLast && i === fields.length - 1 && f.includes('.')) {
        const v4 = parseIpv4(f);
        if (typeof v4 === 'string') return `embedded IPv4 ${JSON.stringify(f)}: ${v4}`;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(f)) return `${JSON.stringify(f)} is not a group of 1-4 hex digits`;
      out.push(parseInt(f, 16));
    }
    return out;
  };
  const head = groupsOf(halves[0]!, halves.length === 1);
  if (typeof head === 'string') return head;
  let groups: number[];
  if (halves.length === 2) {
    const tail = groupsOf(halves[1]!, true);
    if (typeof tail === 'string') return tail;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return '"::" must stand for at least one zero group';
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return `an IPv6 address has 8 groups, found ${groups.length}`;
  return groups.reduce((v, g) => (v << 16n) | BigInt(g), 0n);
}

/** Parses an IPv4 or IPv6 address; throws 'invalid' naming the value and the reason. */
export function parseIp(s: string, what = 'IP address'): Ip {
  if (typeof s !== 'string' || s.length === 0) throw bad(what, String(s), 'empty');
  const r = s.includes(':') ? parseIpv6(s) : parseIpv4(s);
  if (typeof r === 'string') throw bad(what, s, r);
  return { family: s.includes(':') ? 6 : 4, value: r };
}

/** Parses `addr/prefix`. Host bits set is an error (as in Docker since moby#45759) unless `lenient`, which masks them off (for kernel routes and interface addresses). */
export function parseCidr(s: string, options: { lenient?: boolean; what?: string } = {}): Cidr {
  const what = options.what ?? 'CIDR';
  if (typeof s !== 'string') throw bad(what, String(s), 'not a string');
  const slash = s.indexOf('/');
  if (slash < 0) throw bad(what, s, 'missing "/prefix-length"');
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  const family: Family = addr.includes(':') ? 6 : 4;
  const r = family === 6 ? parseIpv6(addr) : parseIpv4(addr);
  if (typeof r === 'string') throw bad(what, s, r);
  if (!/^[0-9]{1,3}$/.test(len) || Number(len) > bits(family)) {
    throw bad(what, s, `prefix length must be a number 0-${bits(family)}`);
  }
  const prefix = Number(len);
  const base = r & maskOf(family, prefix);
  if (base !== r && !options.lenient) {
    throw bad(what, s, `host bits are set; the network is ${formatCidr({ family, base, prefix })}`);
  }
  return { family, base, prefix };
}

function maskOf(family: Family, prefix: number): bigint {
  const b = BigInt(bits(family));
  const all = (1n << b) - 1n;
  return all ^ ((1n << (b - BigInt(prefix))) - 1n);
}

export function size(c: Cidr): bigint {
  return 1n << BigInt(bits(c.family) - c.prefix);
}

/** The last address of the network (the IPv4 broadcast address). */
export function lastOf(c: Cidr): bigint {
  return c.base + size(c) - 1n;
}

export function contains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && ip.value >= c.base && ip.value <= lastOf(c);
}

/** Whether `inner` lies wholly inside `outer`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && inner.base >= outer.base && lastOf(inner) <= lastOf(outer);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= lastOf(b) && b.base <= lastOf(a);
}

export function formatIp(ip: Ip): string {
  return ip.family === 4 ? formatIpv4(ip.value) : formatIpv6(ip.value);
}

function formatIpv4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
}

// One formatter for the whole of strand: the kernel layer's, on the 16 bytes.
function formatIpv6(v: bigint): string {
  const bytes = Buffer.alloc(16);
  bytes.writeBigUInt64BE(v >> 64n, 0);
  bytes.writeBigUInt64BE(v & 0xffffffffffffffffn, 8);
  return bytesToIp(bytes);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.prefix}`;
}

/** Canonical text of an address (e.g. "2001:db8::1" for "2001:0DB8:0:0::1"). */
export function canonicalIp(s: string): string {
  return formatIp(parseIp(s));
}

export function canonicalCidr(s: string): string {
  return formatCidr(parseCidr(s));
}

/** Fixed-width hex of an address: sorts like the address, and a prefix of it names an aligned block. */
export function ipHex(ip: Ip): string {
  return ip.value.toString(16).padStart(ip.family === 4 ? 8 : 32, '0');
}

export function ipFromHex(hex: string): Ip {
  return { family: hex.length === 8 ? 4 : 6, value: BigInt(`0x${hex}`) };
}
