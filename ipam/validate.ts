// Checking a pool request and an owner before anything touches the store, so
// bad input fails with a message naming the bad value and writes nothing.
import { StrandError } from '../common/errors.js';
import { type Cidr, contains, containsCidr, formatCidr, formatIp, lastOf, parseCidr, parseIp } from './cidr.js';
import { type PoolShape, isUnusable, makeShape } from './range.js';
import type { AddressSpace, Owner, Pool } from './types.js';

/** What a caller asks for when creating a pool (Docker RequestPool, CNI host-local ranges). */
export interface PoolRequest {
  /** Address space: 'local' (default) or 'global'. */
  space?: AddressSpace;
  /** The subnet; absent: the next free default pool. */
  subnet?: string;
  /** With no subnet: pick an IPv6 default pool. */
  v6?: boolean;
  /** Sub-range inside the subnet that next-free allocation draws from, as a CIDR (Docker --ip-range). */
  ipRange?: string;
  /** Or as first and last address, both inside the subnet (CNI host-local rangeStart/rangeEnd; either may be left out). */
  rangeStart?: string;
  rangeEnd?: string;
  /** Gateway to reserve; must lie inside the subnet. */
  gateway?: string;
  /** Auxiliary addresses to reserve, name → address (Docker --aux-address). */
  auxAddresses?: Record<string, string>;
  /** Free-form driver options, stored verbatim. */
  options?: Record<string, string>;
}

/** A request with every address parsed and checked against the subnet. */
export interface CheckedRequest {
  space: AddressSpace;
  subnet?: Cidr;
  family: 4 | 6;
  ipRange?: Cidr;
  rangeStart?: bigint;
  rangeEnd?: bigint;
  gateway?: bigint;
  aux: [string, bigint][];
  options: Record<string, string>;
}

function invalid(message: string): StrandError {
  return new StrandError('invalid', message);
}

function stringRecord(value: unknown, what: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`invalid ${what}: expected an object of strings`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid(`invalid ${what}: ${JSON.stringify(k)} is not a string`);
  }
  return { ...(value as Record<string, string>) };
}

export function checkSpace(space: unknown): AddressSpace {
  if (space === undefined) return 'local';
  if (space !== 'local' && space !== 'global') throw invalid(`invalid address space ${JSON.stringify(space)}: use "local" or "global"`);
  return space;
}

export function checkPoolRequest(req: PoolRequest): CheckedRequest {
  const space = checkSpace(req.space);
  const options = stringRecord(req.options, 'pool options');
  const auxIn = stringRecord(req.auxAddresses, 'auxiliary addresses');
  if (req.subnet === undefined) {
    // Without a subnet there is nothing to check these against (Docker refuses them too).
    if (req.ipRange !== undefined || req.rangeStart !== undefined || req.rangeEnd !== undefined || req.gateway !== undefined || Object.keys(auxIn).length > 0) {
      throw invalid('an ip range, gateway or auxiliary addresses need an explicit subnet');
    }
    return { space, family: req.v6 ? 6 : 4, aux: [], options };
  }
  const subnet = parseCidr(req.subnet, { what: 'subnet' });
  const sub = formatCidr(subnet);
  if (req.v6 !== undefined && req.v6 !== (subnet.family === 6)) {
    throw invalid(`subnet ${sub} is IPv${subnet.family} but IPv${req.v6 ? 6 : 4} was requested`);
  }
  let ipRange: Cidr | undefined;
  if (req.ipRange !== undefined) {
    ipRange = parseCidr(req.ipRange, { what: 'ip range' });
    if (!containsCidr(subnet, ipRange)) throw invalid(`ip range ${formatCidr(ipRange)} is outside subnet ${sub}`);
    if (req.rangeStart !== undefined || req.rangeEnd !== undefined) throw invalid('give an ip range either as a CIDR or as rangeStart/rangeEnd, not both');
  }
  const bound = (text: string | undefined, what: string): bigint | undefined => {
    if (text === undefined) return undefined;
    const ip = parseIp(text, what);
    if (!contains(subnet, ip)) throw invalid(`${what} ${formatIp(ip)} is outside subnet ${sub}`);
    return ip.value;
  };
  const rangeStart = bound(req.rangeStart, 'range start');
  const rangeEnd = bound(req.rangeEnd, 'range end');
  if (rangeStart !== undefined && rangeEnd !== undefined && rangeStart > rangeEnd) {
    throw invalid(`range start ${req.rangeStart} is after range end ${req.rangeEnd}`);
  }
  // A reserved address must be a host address of the subnet.
  const inside = (text: string, what: string): bigint => {
    const ip = parseIp(text, what);
    if (!contains(subnet, ip)) throw invalid(`${what} ${formatIp(ip)} is outside subnet ${sub}`);
    if (isUnusable(subnet, ip.value)) {
      const which = ip.value === subnet.base ? 'network' : 'broadcast';
      throw invalid(`${what} ${formatIp(ip)} is the ${which} address of subnet ${sub}`);
    }
    return ip.value;
  };
  const gateway = req.gateway === undefined ? undefined : inside(req.gateway, 'gateway');
  const aux: [string, bigint][] = [];
  for (const [name, text] of Object.entries(auxIn)) {
    if (name === '') throw invalid('auxiliary address names must not be empty');
    const v = inside(text, `auxiliary address ${JSON.stringify(name)}`);
    if (v === gateway) throw invalid(`auxiliary address ${JSON.stringify(name)} ${text} is the gateway`);
    const dup = aux.find(([, w]) => w === v);
    if (dup) throw invalid(`auxiliary addresses ${JSON.stringify(dup[0])} and ${JSON.stringify(name)} are both ${text}`);
    aux.push([name, v]);
  }
  return { space, subnet, family: subnet.family, ipRange, rangeStart, rangeEnd, gateway, aux, options };
}

/** The allocation shape of a stored pool. */
export function shapeOf(pool: Pool): PoolShape {
  const subnet = parseCidr(pool.subnet);
  const reserved: bigint[] = [];
  if (pool.gateway !== undefined) reserved.push(parseIp(pool.gateway).value);
  for (const a of Object.values(pool.auxAddresses)) reserved.push(parseIp(a).value);
  const bounds = poolRange(pool);
  return makeShape(subnet, bounds, reserved);
}

/** The bounds a pool's ipRange or rangeStart/rangeEnd give, if any. */
function poolRange(pool: Pool): { first: bigint; last: bigint } | undefined {
  if (pool.ipRange !== undefined) {
    const r = parseCidr(pool.ipRange);
    return { first: r.base, last: lastOf(r) };
  }
  if (pool.rangeStart === undefined && pool.rangeEnd === undefined) return undefined;
  const subnet = parseCidr(pool.subnet);
  return {
    first: pool.rangeStart === undefined ? subnet.base : parseIp(pool.rangeStart).value,
    last: pool.rangeEnd === undefined ? lastOf(subnet) : parseIp(pool.rangeEnd).value,
  };
}

export function checkOwner(owner: unknown): Owner {
  if (typeof owner !== 'object' || owner === null) throw invalid('an allocation needs an owner: { containerId or endpointId, ifName }');
  const o = owner as Owner;
  const id = o.containerId ?? o.endpointId;
  if (typeof id !== 'string' || id === '') throw invalid('an owner needs a non-empty containerId or endpointId');
  if (o.containerId !== undefined && typeof o.containerId !== 'string') throw invalid('owner containerId must be a string');
  if (o.endpointId !== undefined && typeof o.endpointId !== 'string') throw invalid('owner endpointId must be a string');
  if (o.ifName !== undefined && typeof o.ifName !== 'string') throw invalid('owner ifName must be a string');
  const out: Owner = {};
  if (o.containerId !== undefined) out.containerId = o.containerId;
  if (o.endpointId !== undefined) out.endpointId = o.endpointId;
  if (o.ifName !== undefined) out.ifName = o.ifName;
  if (o.attachment !== undefined) out.attachment = stringRecord(o.attachment, 'owner attachment');
  return out;
}

/** "container abc (eth0)" for messages. */
export function describeOwner(owner: Owner): string {
  const who = owner.containerId !== undefined ? `container ${owner.containerId}` : `endpoint ${owner.endpointId}`;
  return owner.ifName ? `${who} (${owner.ifName})` : who;
}
