// Choosing the next free default pool: walk each base cut into subnets of
// its size, jumping past whatever is in the way instead of testing every
// candidate (10.0.0.0/8 cut into /24s is 65,536 candidates).
import { type Cidr, type Family, bits, formatCidr, lastOf, overlaps, parseCidr } from './cidr.js';
import { StrandError } from '../common/errors.js';

/** A base network to cut into subnets of prefix length `size`, as Docker's default-address-pools. */
export interface DefaultPool {
  base: string;
  size: number;
}

/** Docker's local defaults: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s. */
export const DOCKER_LOCAL_DEFAULTS: readonly DefaultPool[] = [
  ...Array.from({ length: 15 }, (_, i) => ({ base: `172.${17 + i}.0.0/16`, size: 16 })),
  { base: '192.168.0.0/16', size: 20 },
];

/** Docker swarm's global default: 10.0.0.0/8 cut into /24s. */
export const DOCKER_GLOBAL_DEFAULTS: readonly DefaultPool[] = [{ base: '10.0.0.0/8', size: 24 }];

export interface ParsedDefault {
  base: Cidr;
  size: number;
}

/** Validates a default-pool list up front, so a bad configuration fails at start, not at the first network. */
export function parseDefaults(list: readonly DefaultPool[]): ParsedDefault[] {
  return list.map((d) => {
    const base = parseCidr(d.base, { what: 'default pool base' });
    if (!Number.isInteger(d.size) || d.size < base.prefix || d.size > bits(base.family)) {
      throw new StrandError(
        'invalid',
        `invalid default pool size ${d.size} for base ${d.base}: must be an integer from ${base.prefix} to ${bits(base.family)}`,
      );
    }
    return { base, size: d.size };
  });
}

/**
 * The first subnet, in list order, that overlaps nothing in `taken` (existing
 * pools and host routes); undefined when every default is used. Cost grows
 * with the number of taken networks, not with the number of candidates.
 */
export function pickDefault(defaults: readonly ParsedDefault[], taken: readonly Cidr[], family: Family): Cidr | undefined {
  for (const d of defaults) {
    if (d.base.family !== family) continue;
    const step = 1n << BigInt(bits(family) - d.size);
    const end = lastOf(d.base);
    let at = d.base.base;
    while (at <= end) {
      const candidate: Cidr = { family, base: at, prefix: d.size };
      let blockedUntil = -1n;
      for (const t of taken) {
        if (overlaps(candidate, t) && lastOf(t) > blockedUntil) blockedUntil = lastOf(t);
      }
      if (blockedUntil < 0n) return candidate;
      // Next aligned candidate after the blocker's end.
      at = ((blockedUntil + 1n + step - 1n) / step) * step;
      if (at <= candidate.base) at = candidate.base + step;
    }
  }
  return undefined;
}

export function describeDefaults(defaults: readonly ParsedDefault[]): string {
  return defaults.map((d) => `${formatCidr(d.base)} in /${d.size}s`).join(', ');
}
