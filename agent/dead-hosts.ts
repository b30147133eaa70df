// Hosts that never come back. A host whose lease ran out leaves its
// endpoints on global networks in the store, and their addresses allocated in
// the global pool, for a grace period (`--dead-host-grace`), so a restart or a
// partition heals without churn. The first agent that sees such a host writes
// a departure record (overlay/departed/<id>: when it noticed). Once the grace
// period has passed, one agent, the live host with the smallest id, releases
// each of the host's endpoints' addresses and removes the endpoint records,
// then the departure record. Every one of those writes is a transaction that
// also requires the host to be still without a lease, so a second cleaner
// (two agents that briefly disagree on who is smallest) finds nothing left to
// do, and a host that comes back mid-way stops the cleanup at once.
import { isStrandError } from '../common/errors.js';
import type { Ipam } from '../ipam/index.js';
import type { Store, TxnCheck } from '../store/types.js';
import { GLOBAL_ENDPOINTS, type GlobalEndpoint } from '../core/records/index.js';
import { poolOf } from '../core/networks.js';
import type { NetworkRecord } from '../core/types.js';
import { DEPARTED_PREFIX, departedKey, hostKey, type DepartureRecord } from '../cluster/hosts.js';
import type { ClusterView } from './overlay-tables.js';
import { engineHosts, forgetEngineHost } from '../cluster/engines.js';

export interface DeadHostOptions {
  store: Store;
  ipam: Ipam;
  hostId: string;
  graceMs: number;
  log: (line: string) => void;
}

export class DeadHostReaper {
  constructor(private readonly o: DeadHostOptions) {}

  /** One pass, after a resync: notes newly departed hosts, forgets returned ones, reaps expired ones. */
  async check(view: ClusterView): Promise<void> {
    const { store } = this.o;
    const departed = new Map((await store.list(DEPARTED_PREFIX)).map((kv) => [kv.key.slice(DEPARTED_PREFIX.length), kv]));
    // A host counts while it holds endpoints, or its Docker engine is a member of a cluster network.
    const owners = new Set([...view.endpoints.values()].map((e) => e.hostId).concat([...(await engineHosts(store))]));
    for (const host of owners) {
      if (view.hosts.has(host) || departed.has(host)) continue;
      const rec: DepartureRecord = { hostId: host, since: new Date().toISOString(), noticedBy: this.o.hostId };
      try {
        await store.txn([{ key: departedKey(host), absent: true }, { key: hostKey(host), absent: true }], [{ op: 'put', key: departedKey(host), value: JSON.stringify(rec) }]);
        this.log(`host ${host} has endpoints but no lease; its endpoints are removed after ${this.o.graceMs / 1000} s unless it comes back`);
      } catch (err) {
        if (!isStrandError(err, 'conflict')) throw err; // another agent noticed first, or the host is back
      }
    }
    for (const [host, kv] of departed) {
      if (!view.hosts.has(host)) continue;
      await store.txn([{ key: kv.key, modRevision: kv.modRevision }], [{ op: 'delete', key: kv.key }]).catch(() => undefined);
    }
    if (!this.isCleaner(view)) return;
    const networks = view.networks;
    for (const [host, kv] of departed) {
      if (view.hosts.has(host)) continue;
      const rec = JSON.parse(kv.value) as DepartureRecord;
      if (Date.now() - Date.parse(rec.since) < this.o.graceMs) continue;
      await this.reap(host, networks);
    }
  }

  /** The live host with the smallest id does the work, so normally exactly one agent writes. */
  private isCleaner(view: ClusterView): boolean {
    return [...view.hosts.keys()].sort()[0] === this.o.hostId;
  }

  private async reap(host: string, networks: Map<string, NetworkRecord>): Promise<void> {
    const { store, ipam } = this.o;
    const gone: TxnCheck = { key: hostKey(host), absent: true };
    let removed = 0;
    const released: string[] = [];
    for (const kv of await store.list(GLOBAL_ENDPOINTS)) {
      const ep = JSON.parse(kv.value) as GlobalEndpoint;
      if (ep.hostId !== host) continue;
      // Addresses first: if this stops half-way, the record is still there for the next pass.
      for (const cidr of ep.addresses) {
        const poolId = poolOf(networks.get(ep.networkId), cidr);
        if (!poolId) continue;
        const address = cidr.split('/')[0]!;
        try {
          const r = await ipam.releaseIf(poolId, address, (held) => held.host === host && !held.gateway, [gone]);
          if (r) released.push(address);
        } catch (err) {
          if (!isStrandError(err, 'not-found')) throw err; // the pool went with its network
        }
      }
      try {
        await store.txn([gone, { key: kv.key, modRevision: kv.modRevision }], [{ op: 'delete', key: kv.key }]);
        removed++;
      } catch (err) {
        if (!isStrandError(err, 'conflict')) throw err;
        this.log(`stopped removing host ${host}'s endpoints: it is back, or its records changed`);
        return;
      }
    }
    let memberships = 0;
    try {
      memberships = await forgetEngineHost(store, host, [gone]);
    } catch (err) {
      if (!isStrandError(err, 'conflict')) throw err;
      this.log(`stopped forgetting host ${host}'s Docker engine: it is back`);
      return;
    }
    const departure = await store.get(departedKey(host));
    if (departure) await store.txn([gone, { key: departure.key, modRevision: departure.modRevision }], [{ op: 'delete', key: departure.key }]).catch(() => undefined);
    this.log(`host ${host} did not come back within ${this.o.graceMs / 1000} s: removed its ${removed} endpoint(s) and released ${released.length ? released.join(', ') : 'no addresses'}${memberships ? `; its Docker engine no longer counts as a member of ${memberships} cluster network(s)` : ''}`);
  }

  private log(line: string): void {
    this.o.log(line);
  }
}
