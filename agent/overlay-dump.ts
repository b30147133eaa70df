// `strand daemon dump`: this host's overlay peer tables, desired (from the
// store, read now) against actual (from the kernel, read now), with the
// running agent's own status. When the store is unreachable, the agent's
// last written tables stand in for the desired side.
import { existsSync, readFileSync } from 'node:fs';
import { Netlink } from '../netlink/index.js';
import type { Store } from '../store/types.js';
import { actualFor, changeCount, diff, tables, type PeerTable } from './overlay-tables.js';
import { loadView } from './overlay-view.js';
import { DEPARTED_PREFIX, type DepartureRecord } from '../cluster/hosts.js';
import type { AgentStatus } from './overlay-peers.js';
import { clusterDataPlane } from '../runtime/index.js';

export interface Dump {
  hostId: string;
  store: { reachable: boolean; error?: string };
  agent: AgentStatus | null;
  /** Every present table matches its desired state. */
  inSync: boolean;
  tables: (PeerTable & { pending: number })[];
  /** Hosts without a lease whose endpoints still stand, waiting out the grace period (agent/dead-hosts.ts). */
  departed: (DepartureRecord & { endpoints: number })[];
}

export const statusFileIn = (runDir: string): string => `${runDir}/overlay-agent.json`;

/** store is undefined when it could not even be opened (a Redis server that is down). */
export async function dump(store: Store | undefined, hostId: string, runDir: string, storeError?: string): Promise<Dump> {
  const file = statusFileIn(runDir);
  const agent = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as AgentStatus) : null;
  let live: PeerTable[];
  let departed: Dump['departed'] = [];
  let storeState: Dump['store'] = { reachable: true };
  const nl = Netlink.open();
  try {
    try {
      if (!store) throw new Error(storeError ?? 'the store could not be opened');
      const { view } = await loadView(store);
      live = tables(nl, view, hostId, clusterDataPlane(nl));
      const endpoints = [...view.endpoints.values()];
      departed = (await store.list(DEPARTED_PREFIX)).map((kv) => {
        const d = JSON.parse(kv.value) as DepartureRecord;
        return { ...d, endpoints: endpoints.filter((e) => e.hostId === d.hostId).length };
      });
    } catch (err) {
      storeState = { reachable: false, error: (err as Error).message };
      // The agent's last desired state against what the kernel holds now.
      live = (agent?.tables ?? []).map((t) => {
        const now = actualFor(nl, t.device);
        return { ...t, present: now !== undefined, actual: now ?? { fdb: [], neigh: [] }, mtu: { desired: t.mtu?.desired ?? 0, actual: nl.links.find(t.device)?.mtu ?? 0 } };
      });
    }
  } finally {
    nl.close();
  }
  // A device whose MTU is not the cluster's yet counts as one pending change.
  const withPending = live.map((t) => ({ ...t, pending: t.present ? changeCount(diff(t)) + Number(t.mtu.desired !== t.mtu.actual) : 0 }));
  return { hostId, store: storeState, agent, inSync: withPending.every((t) => t.pending === 0), tables: withPending, departed };
}
