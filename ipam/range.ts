// Allocation arithmetic for one pool, free of any store: which addresses the
// allocator may hand out, how many there are, and the order it tries them in
// (after the cursor, wrapping, as CNI host-local's last-reserved IP does).
import { type Cidr, type Ip, lastOf } from './cidr.js';

export interface PoolShape {
  subnet: Cidr;
  /** Inclusive bounds of the range next-free allocation draws from (the subnet, a Docker --ip-range CIDR, or CNI rangeStart-rangeEnd). */
  first: bigint;
  last: bigint;
  /** Reserved addresses (gateway, auxiliary addresses) as values. */
  reserved: readonly bigint[];
}

/** The shape of a subnet with an optional sub-range; the range must lie in the subnet. */
export function makeShape(subnet: Cidr, range: { first: bigint; last: bigint } | undefined, reserved: readonly bigint[]): PoolShape {
  return { subnet, first: range?.first ?? subnet.base, last: range?.last ?? lastOf(subnet), reserved };
}

export function inRange(shape: PoolShape, v: bigint): boolean {
  return v >= shape.first && v <= shape.last;
}

/** Network and broadcast addresses are never handed out, except on IPv4 /31-/32 (RFC 3021) and IPv6 /127-/128, where every address is a host. IPv6 has no broadcast, but its network address is the subnet-router anycast address. */
export function isUnusable(subnet: Cidr, v: bigint): boolean {
  const hostBits = (subnet.family === 4 ? 32 : 128) - subnet.prefix;
  if (hostBits <= 1) return false;
  if (v === subnet.base) return true;
  return subnet.family === 4 && v === lastOf(subnet);
}

/** Whether next-free allocation may hand out `v` (ignoring whether it is taken). */
export function isCandidate(shape: PoolShape, v: bigint): boolean {
  return inRange(shape, v) && !isUnusable(shape.subnet, v) && !shape.reserved.includes(v);
}

/** How many addresses next-free allocation can hand out in total. */
export function capacity(shape: PoolShape): bigint {
  let n = shape.last - shape.first + 1n;
  const excluded = new Set<bigint>(shape.reserved);
  excluded.add(shape.subnet.base);
  excluded.add(lastOf(shape.subnet));
  for (const v of excluded) {
    if (inRange(shape, v) && (isUnusable(shape.subnet, v) || shape.reserved.includes(v))) n--;
  }
  return n;
}

/**
 * The next candidate strictly after `from` in allocation order, wrapping from
 * the range's end to its start. `from` may be undefined (start of range) or
 * outside the range (then the range start). Skips unusable and reserved
 * addresses, of which there are only a handful, so this is O(reserved).
 */
export function nextCandidate(shape: PoolShape, from: bigint | undefined): bigint {
  const { first, last } = shape;
  let v = from === undefined || from < first || from >= last ? first : from + 1n;
  // At most reserved+2 addresses can be skipped in a row before a candidate
  // turns up; the bound guards against a range with no candidate at all.
  for (let i = 0; i < shape.reserved.length + 3; i++) {
    if (isCandidate(shape, v)) return v;
    v = v >= last ? first : v + 1n;
  }
  throw new Error('pool range has no allocatable address');
}

/** Inclusive bounds of the aligned block of 2^blockBits addresses holding `v`, clipped to the range. */
export function blockOf(shape: PoolShape, v: bigint, blockBits: number): { start: bigint; end: bigint } {
  const mask = (1n << BigInt(blockBits)) - 1n;
  const start = v & ~mask;
  const end = start | mask;
  return { start: start < shape.first ? shape.first : start, end: end > shape.last ? shape.last : end };
}

/** The first candidate at or after `v`, up to `end`, that is not in `taken`; undefined when all are taken. */
export function firstFreeFrom(shape: PoolShape, v: bigint, end: bigint, taken: ReadonlySet<bigint>): bigint | undefined {
  for (let x = v; x <= end; x++) {
    if (!taken.has(x) && isCandidate(shape, x)) return x;
  }
  return undefined;
}

export function toIp(shape: PoolShape, v: bigint): Ip {
  return { family: shape.subnet.family, value: v };
}
