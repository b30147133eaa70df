// Reading the cluster's overlay state from the store in one go: live hosts,
// global networks and the cluster-wide endpoint index, with the revision to
// watch from afterwards.
import type { Store } from '../store/types.js';
import { GLOBAL_ENDPOINTS, GLOBAL_NETWORKS, type GlobalEndpoint } from '../core/records/index.js';
import type { NetworkRecord } from '../core/types.js';
import { HOSTS_PREFIX, type HostRecord } from '../cluster/hosts.js';
import { emptyView, type ClusterView } from './overlay-tables.js';

export async function loadView(store: Store): Promise<{ view: ClusterView; revision: number }> {
  // Revision first: watching from just after it replays anything the lists missed, in order.
  const revision = await store.revision();
  const [hosts, nets, eps] = await Promise.all([store.list(HOSTS_PREFIX), store.list(GLOBAL_NETWORKS), store.list(GLOBAL_ENDPOINTS)]);
  const view = emptyView();
  for (const kv of hosts) view.hosts.set(kv.key.slice(HOSTS_PREFIX.length), JSON.parse(kv.value) as HostRecord);
  for (const kv of nets) view.networks.set(kv.key.slice(GLOBAL_NETWORKS.length), JSON.parse(kv.value) as NetworkRecord);
  for (const kv of eps) {
    const ep = JSON.parse(kv.value) as GlobalEndpoint;
    view.endpoints.set(ep.id, ep);
  }
  return { view, revision };
}
