// The records IPAM keeps in the store and hands to callers.

/** 'local': this host's own space; 'global': shared by every host on the same store. */
export type AddressSpace = 'local' | 'global';

/**
 * Who holds an address. containerId (CNI) or endpointId (Docker/core) names
 * the attachment, ifName the interface; GC compares owners against live
 * attachments, so (id, ifName) must identify one attachment.
 */
export interface Owner {
  containerId?: string;
  endpointId?: string;
  ifName?: string;
  /** Free-form attachment fields (e.g. network name, pod name), kept for diagnosis. */
  attachment?: Record<string, string>;
}

/** A pool as stored; immutable after creation. */
export interface Pool {
  /** Opaque id; names the address space, so calls need nothing but the id. */
  id: string;
  space: AddressSpace;
  /** Canonical CIDR. */
  subnet: string;
  /** Canonical CIDR inside subnet that next-free allocation draws from (Docker --ip-range). */
  ipRange?: string;
  /** Or its first and last address (CNI host-local rangeStart/rangeEnd); a missing one is the subnet's edge. */
  rangeStart?: string;
  rangeEnd?: string;
  /** Reserved gateway address, if one was given or requested with the pool. */
  gateway?: string;
  /** Reserved auxiliary addresses, name → address (Docker's --aux-address). */
  auxAddresses: Record<string, string>;
  /** Free-form options from the caller (Docker's pool options), kept verbatim. */
  options: Record<string, string>;
  /** Host that created the pool. */
  createdBy: string;
}

/** One allocated address with its owner. */
export interface Allocation {
  poolId: string;
  address: string;
  owner: Owner;
  /** Host that made the allocation: GC on one host only judges its own. */
  host: string;
  /** Set when the address was taken as its pool's gateway; GC leaves it to the pool. */
  gateway?: boolean;
}

/** Per-pool counters, rewritten by every allocation and release (the CAS point). */
export interface PoolState {
  /** Last address handed out by next-free allocation, as hex; '' before the first. */
  cursor: string;
  /** Addresses allocated in the pool. */
  allocated: number;
  /** Of those, how many lie in the next-free range (exhaustion is inRange == capacity). */
  inRange: number;
}
