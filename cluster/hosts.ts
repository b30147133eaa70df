// The cluster's hosts as the store knows them: each agent keeps its record
// under overlay/hosts/<hostId> on a lease, so a host that stops renewing
// vanishes from the store, and from every other host's peer tables with it.
import { StrandError } from '../common/errors.js';
import type { Store } from '../store/types.js';

export const HOSTS_PREFIX = 'overlay/hosts/';
export const hostKey = (hostId: string): string => HOSTS_PREFIX + hostId;

/**
 * A host whose lease ran out while it still had endpoints on global networks:
 * when an agent first noticed. After the grace period its endpoints are
 * removed (agent/dead-hosts.ts); a host that comes back deletes its own.
 */
export const DEPARTED_PREFIX = 'overlay/departed/';
export const departedKey = (hostId: string): string => DEPARTED_PREFIX + hostId;

export interface DepartureRecord {
  hostId: string;
  /** When the first agent noticed the host gone (its clock). */
  since: string;
  noticedBy: string;
}

export interface HostRecord {
  hostId: string;
  /** The VXLAN tunnel endpoint: the host's --advertise-addr. */
  vtep: string;
  /** The interface holding vtep, and its MTU when the agent started. */
  underlay: string;
  underlayMtu: number;
  /** When this agent process registered. */
  since: string;
}

export async function getHost(store: Store, hostId: string): Promise<HostRecord | undefined> {
  const kv = await store.get(hostKey(hostId));
  return kv ? (JSON.parse(kv.value) as HostRecord) : undefined;
}

/** Every live host (records go with their leases). */
export async function listHosts(store: Store): Promise<HostRecord[]> {
  return (await store.list(HOSTS_PREFIX)).map((kv) => JSON.parse(kv.value) as HostRecord);
}

/** This host's record; the overlay cannot work here without it. */
export async function requireHost(store: Store, hostId: string, hosts?: HostRecord[]): Promise<HostRecord> {
  const host = hosts ? hosts.find((h) => h.hostId === hostId) : await getHost(store, hostId);
  if (!host) {
    throw new StrandError('unavailable', `host "${hostId}" has no overlay agent registered in the store: start "strand daemon --store URL --advertise-addr IP --host-id ${hostId}" on it first`);
  }
  return host;
}
