// The cluster's Docker engines, as every host needs to know them: which
// hosts' engines still use a cluster network (the last one's `docker network
// rm` removes it), and forgetting a host that left for good. The Docker
// front door (plugins/docker/overlay-links.ts) writes these keys; the CLI and
// the dead-host reaper read and clear them from here.
import type { Store, TxnCheck } from '../store/types.js';

/** docker/overlay/hosts/<hostId>/networks/<engineNetworkId>: one host's engine networks and the cluster networks they stand for. */
export const ENGINE_HOSTS = 'docker/overlay/hosts/';
/** docker/overlay/members/<clusterId>/<hostId>: the engines that still use a cluster network. */
export const ENGINE_MEMBERS = 'docker/overlay/members/';

/** Hosts whose Docker engines use a cluster network (their `docker network rm` removes it, the last one everywhere). */
export async function engineMembers(store: Store, clusterId: string): Promise<string[]> {
  const prefix = `${ENGINE_MEMBERS}${clusterId}/`;
  return (await store.list(prefix)).map((kv) => kv.key.slice(prefix.length));
}

/** Hosts whose Docker engines use any cluster network. */
export async function engineHosts(store: Store): Promise<Set<string>> {
  return new Set((await store.list(ENGINE_MEMBERS)).map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1)));
}

/**
 * Forgets a host that left the cluster for good: its engine links and its
 * memberships, so the other hosts' last `docker network rm` can remove the
 * network. Every delete also requires `checks` (the host still gone).
 */
export async function forgetEngineHost(store: Store, hostId: string, checks: TxnCheck[]): Promise<number> {
  const own = await store.list(`${ENGINE_HOSTS}${hostId}/`);
  const memberships = (await store.list(ENGINE_MEMBERS)).filter((kv) => kv.key.endsWith(`/${hostId}`));
  const keys = [...own, ...memberships].map((kv) => kv.key);
  if (keys.length) await store.txn(checks, keys.map((key) => ({ op: 'delete' as const, key })));
  return memberships.length;
}
