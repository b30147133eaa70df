// IP and MAC addresses to and from the byte strings netlink carries. Only
// what the kernel layer needs; prefix arithmetic lives in ipam/.
import { isIPv4, isIPv6 } from 'node:net';
import { StrandError } from '../common/errors.js';

export type Family = 4 | 6;

export function ipFamily(ip: string): Family {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  throw new StrandError('invalid', `invalid IP address "${ip}"`);
}

export function ipToBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new StrandError('invalid', `invalid IP address "${ip}"`);
  let text = ip;
  const out = Buffer.alloc(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipToBytes(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Canonical text (RFC 5952): lower case, the longest run of zero groups as "::", IPv4-mapped in dotted form. */
export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new StrandError('internal', `address of ${b.length} bytes`);
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${bytesToIp(b.subarray(12))}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // The longest run (the first on a tie) of two or more zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** "a.b.c.d/len" or "x::y/len" into address and prefix length, checked. */
export function parsePrefix(cidr: string): { ip: string; prefixLen: number; family: Family } {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw new StrandError('invalid', `invalid address "${cidr}": expected ADDRESS/PREFIXLEN`);
  const ip = cidr.slice(0, slash);
  const lenText = cidr.slice(slash + 1);
  const family = ipFamily(ip);
  const prefixLen = Number(lenText);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || prefixLen > max) {
    throw new StrandError('invalid', `invalid prefix length "${lenText}" in "${cidr}": must be 0 to ${max}`);
  }
  return { ip, prefixLen, family };
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function macToBytes(mac: string): Buffer {
  if (!MAC_RE.test(mac)) throw new StrandError('invalid', `invalid MAC address "${mac}": expected six hex bytes like 02:42:ac:11:00:02`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function bytesToMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
