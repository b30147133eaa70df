// Docker's -p syntax turned into port mappings, and a helper for choosing a
// dynamic host port. Choosing and persisting the port is core's job; the
// firewall only ever programs concrete host ports.
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { StrandError } from '../common/errors.js';
import { withNetns, type NetNs } from '../netlink/index.js';

export type Proto = 'tcp' | 'udp';

export interface PortMapping {
  proto: Proto;
  /** Host address to publish on; '' or undefined = every local address of the container IP's family. */
  hostIp?: string;
  /** Host port; 0 = not chosen yet (dynamic): core picks one before calling publish(). */
  hostPort: number;
  /** When set, hostPort..hostPortEnd is a range to pick ONE host port from (spec "8000-8010:80"). */
  hostPortEnd?: number;
  containerPort: number;
}

/** Docker's default range for dynamic host ports. */
export const DYNAMIC_PORT_RANGE = { start: 49153, end: 60999 } as const;

function bad(spec: string, why: string): StrandError {
  return new StrandError('invalid', `invalid port spec "${spec}": ${why}`);
}

/** "80" or "8000-8010" into [start, end]. */
function parseRange(spec: string, text: string, what: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw bad(spec, `${what} "${text}" is not a port or a port range (e.g. 80 or 8000-8010)`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  for (const p of [start, end]) {
    if (p < 1 || p > 65535) throw bad(spec, `${what} ${p} is out of range: ports are 1 to 65535`);
  }
  if (end < start) throw bad(spec, `${what} range "${text}" ends before it starts`);
  return [start, end];
}

/**
 * Parses one -p value: [ip:]hostPort:containerPort[/tcp|udp], [ip:]:containerPort
 * or containerPort alone (dynamic host port), ranges 8000-8010:80-90 (mapped 1:1)
 * and 8000-8010:80 (one host port from the range), IPv6 host addresses in
 * brackets ([::1]:8080:80).
 */
export function parsePortSpec(spec: string): PortMapping[] {
  if (typeof spec !== 'string' || spec.trim() === '') throw bad(String(spec), 'it is empty');
  let rest = spec.trim();
  let proto: Proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw bad(spec, `protocol "${rest.slice(slash + 1)}" is not supported: use tcp or udp`);
    proto = p;
    rest = rest.slice(0, slash);
  }

  let hostIp: string | undefined;
  let hostPart: string | undefined;
  let containerPart: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw bad(spec, 'the "[" of an IPv6 host address is never closed');
    hostIp = rest.slice(1, close);
    // node:net's isIP takes fe80::1%eth0, but a host binding is an address, not a scope: IPAM and the firewall refuse zones later.
    if (hostIp.includes('%')) throw bad(spec, `host address "${hostIp}" has a zone id ("%${hostIp.slice(hostIp.indexOf('%') + 1)}"): a host binding takes no zone; give the address alone, e.g. [${hostIp.slice(0, hostIp.indexOf('%'))}]`);
    if (isIP(hostIp) !== 6) throw bad(spec, `"${hostIp}" in brackets is not an IPv6 address`);
    const after = rest.slice(close + 1);
    const parts = after.split(':');
    if (parts.length !== 3 || parts[0] !== '') throw bad(spec, 'expected [IPv6]:hostPort:containerPort or [IPv6]::containerPort');
    hostPart = parts[1]!;
    containerPart = parts[2]!;
  } else {
    const parts = rest.split(':');
    if (parts.length === 1) containerPart = parts[0]!;
    else if (parts.length === 2) [hostPart, containerPart] = parts as [string, string];
    else if (parts.length === 3) {
      hostIp = parts[0]!;
      hostPart = parts[1]!;
      containerPart = parts[2]!;
      if (isIP(hostIp) === 0) throw bad(spec, `host address "${hostIp}" is not an IP address`);
      if (isIP(hostIp) === 6) throw bad(spec, 'put an IPv6 host address in brackets, e.g. [::1]:8080:80');
    } else throw bad(spec, 'too many ":" (an IPv6 host address must be in brackets, e.g. [::1]:8080:80)');
  }
  if (containerPart === '') throw bad(spec, 'the container port is missing');

  const [cStart, cEnd] = parseRange(spec, containerPart, 'container port');
  const base = { proto, ...(hostIp ? { hostIp } : {}) };
  const out: PortMapping[] = [];
  if (hostPart === undefined || hostPart === '') {
    // No host port: every container port gets its own dynamic host port.
    for (let c = cStart; c <= cEnd; c++) out.push({ ...base, hostPort: 0, containerPort: c });
    return out;
  }
  const [hStart, hEnd] = parseRange(spec, hostPart, 'host port');
  if (cStart === cEnd && hStart !== hEnd) return [{ ...base, hostPort: hStart, hostPortEnd: hEnd, containerPort: cStart }];
  if (hEnd - hStart !== cEnd - cStart) {
    const count = (a: number, b: number): string => (b === a ? '1 port' : `${b - a + 1} ports`);
    throw bad(spec, `host ports ${hostPart} are ${count(hStart, hEnd)} but container ports ${containerPart} are ${count(cStart, cEnd)}: give equal ranges, or one container port`);
  }
  for (let i = 0; i <= cEnd - cStart; i++) out.push({ ...base, hostPort: hStart + i, containerPort: cStart + i });
  return out;
}

/** Local ports bound now (listening TCP, any UDP) in the namespace, from /proc/net. */
export function boundPorts(proto: Proto, ns?: NetNs): Set<number> {
  const read = (): string[] =>
    [`/proc/thread-self/net/${proto}`, `/proc/thread-self/net/${proto}6`].map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return ''; // no IPv6 in this kernel
      }
    });
  const texts = ns ? withNetns(ns, read) : read();
  const ports = new Set<number>();
  for (const text of texts) {
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      // TCP state 0A is LISTEN; for UDP every socket holds its port.
      if (proto === 'tcp' && f[3] !== '0A') continue;
      ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/**
 * The lowest port of [start, end] that is neither in `taken` (what core has
 * already handed out for this protocol) nor bound by a socket in the
 * namespace. Throws 'exhausted' when there is none.
 */
export function pickFreePort(range: { start: number; end: number }, taken: Set<number>, proto: Proto, options: { ns?: NetNs } = {}): number {
  const { start, end } = range;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 1 || end > 65535 || end < start) {
    throw new StrandError('invalid', `invalid port range ${start}-${end}: expected 1 <= start <= end <= 65535`);
  }
  const bound = boundPorts(proto, options.ns);
  for (let p = start; p <= end; p++) if (!taken.has(p) && !bound.has(p)) return p;
  throw new StrandError('exhausted', `no free ${proto} host port in ${start}-${end}: unpublish something or widen the range`);
}
