// Store key layout. The global space's keys are the same on every host; the
// local space's keys include the host id, so hosts sharing an etcd or Redis
// store never see each other's local pools.
//
//   <space>/pools/<poolId>                Pool, one key per pool (written once)
//   <space>/pool-guard                    rewritten by every pool creation and release,
//                                         CAS'd by every creation, so two hosts cannot
//                                         create overlapping pools; its value is small
//   <space>/pools                         (stores written by earlier versions) every Pool in
//                                         one key, {pools: {id: Pool}}; moved into
//                                         pools/<poolId> keys on first use
//   <space>/state/<poolId>                PoolState: cursor and counts; every
//                                         allocation and release CASes it
//   <space>/addrs/<poolId>/<hex>          Allocation of one address (hex: fixed
//                                         width, so a key prefix is an aligned block)
//   <space>/owners/<owner>/<poolId>/<hex> index from owner to its addresses
//
// where <space> is `ipam/global` or `ipam/local/<hostId>`.
import type { AddressSpace, Owner } from './types.js';
import { StrandError } from '../common/errors.js';

/** Only these characters appear in key segments taken from input. */
const SAFE = /^[A-Za-z0-9._-]+$/;

export function spacePrefix(space: AddressSpace, hostId: string): string {
  return space === 'global' ? 'ipam/global' : `ipam/local/${hostId}`;
}

export function checkHostId(hostId: string): string {
  if (!SAFE.test(hostId)) {
    throw new StrandError('invalid', `invalid host id ${JSON.stringify(hostId)}: use letters, digits, ".", "_" and "-"`);
  }
  return hostId;
}

// Percent-encodes anything outside SAFE so ids with "/" or ":" cannot
// escape their key segment or collide with each other.
function enc(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.codePointAt(0)!.toString(16)}%`);
}

/** The owner's key segments: `c<containerId>` or `e<endpointId>`, then `i<ifName>`. */
export function ownerPrefix(owner: Owner): string {
  const id = owner.containerId !== undefined ? `c${enc(owner.containerId)}` : `e${enc(owner.endpointId ?? '')}`;
  return owner.ifName === undefined ? `${id}/` : `${id}/i${enc(owner.ifName)}/`;
}

export class Keys {
  constructor(readonly prefix: string) {}
  /** Prefix of the pool keys. */
  pools(): string {
    return `${this.prefix}/pools/`;
  }
  pool(poolId: string): string {
    return `${this.prefix}/pools/${poolId}`;
  }
  poolGuard(): string {
    return `${this.prefix}/pool-guard`;
  }
  /** The one-key registry of earlier versions; a list of this prefix returns it and every pool key at once. */
  legacyRegistry(): string {
    return `${this.prefix}/pools`;
  }
  state(poolId: string): string {
    return `${this.prefix}/state/${poolId}`;
  }
  addrs(poolId: string): string {
    return `${this.prefix}/addrs/${poolId}/`;
  }
  addr(poolId: string, hex: string): string {
    return `${this.prefix}/addrs/${poolId}/${hex}`;
  }
  owners(owner: Owner): string {
    return `${this.prefix}/owners/${ownerPrefix(owner)}`;
  }
  ownerAddr(owner: Owner, poolId: string, hex: string): string {
    // Always the full (id, ifName) form, so a prefix with or without ifName finds it.
    return `${this.prefix}/owners/${ownerPrefix({ ...owner, ifName: owner.ifName ?? '' })}${poolId}/${hex}`;
  }
}
