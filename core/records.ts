// Where core keeps networks, endpoints, sandboxes and host-port claims in the
// store, and the transactions that keep names and ports unique.
//
// Keys (per host, under core/<hostId>/):
//   networks/<id>, network-names/<name>, endpoints/<id>,
//   sandboxes/<id>, sandbox-names/<name>, ports/<proto>/<port>,
//   and the indexes by-network/<networkId>/<endpointId> and
//   by-sandbox/<sandboxId>/<endpointId>, so finding a sandbox's or a
//   network's endpoints costs the same however many endpoints exist.
//
// Networks of global scope (overlay) are shared by every host on the store,
// under core/global/: networks/<id>, network-names/<name>, and
// endpoints/<networkId>/<endpointId> — a cluster-wide index of the endpoints
// on them (host, MAC, addresses), which agents read to program peers. The
// endpoints themselves stay per host.
import { StrandError } from '../common/errors.js';
import type { Store, TxnCheck, TxnOp } from '../store/types.js';
import type { EndpointRecord, NetworkRecord, PortBinding, SandboxRecord } from './types.js';

interface PortClaim {
  hostIp: string;
  endpointId: string;
}

type Kind = 'networks' | 'cni-networks' | 'endpoints' | 'sandboxes';

export const GLOBAL_PREFIX = 'core/global/';
export const GLOBAL_NETWORKS = `${GLOBAL_PREFIX}networks/`;
export const GLOBAL_ENDPOINTS = `${GLOBAL_PREFIX}endpoints/`;

/** What every host sees of an endpoint on a global network. */
export interface GlobalEndpoint {
  id: string;
  networkId: string;
  hostId: string;
  mac: string;
  addresses: string[];
}

export const globalEndpointKey = (networkId: string, endpointId: string): string => `${GLOBAL_ENDPOINTS}${networkId}/${endpointId}`;

export class Records {
  private readonly prefix: string;

  constructor(
    readonly store: Store,
    readonly hostId: string,
  ) {
    if (hostId === 'global') throw new StrandError('invalid', 'host id "global" is reserved for cluster-wide records; choose another --host-id');
    this.prefix = `core/${hostId}/`;
  }

  private key(kind: Kind | 'network-names' | 'sandbox-names', id: string): string {
    return `${this.prefix}${kind}/${id}`;
  }

  private globalKey(kind: 'networks' | 'network-names', id: string): string {
    return `${GLOBAL_PREFIX}${kind}/${id}`;
  }

  private async getJson<T>(key: string): Promise<T | undefined> {
    const kv = await this.store.get(key);
    return kv ? (JSON.parse(kv.value) as T) : undefined;
  }

  private async listJson<T>(kind: Kind): Promise<T[]> {
    return (await this.store.list(`${this.prefix}${kind}/`)).map((kv) => JSON.parse(kv.value) as T);
  }

  // ---- networks ----

  /** This host's networks and the cluster's global ones. */
  async listNetworks(): Promise<NetworkRecord[]> {
    const global = (await this.store.list(GLOBAL_NETWORKS)).map((kv) => JSON.parse(kv.value) as NetworkRecord);
    return [...(await this.listJson<NetworkRecord>('networks')), ...global];
  }

  /** Any network an endpoint can be on: this host's, a CNI network of this host, a global one. */
  async getNetwork(id: string): Promise<NetworkRecord | undefined> {
    return (await this.getJson<NetworkRecord>(this.key('networks', id))) ?? (await this.getCniNetwork(id)) ?? this.getJson<NetworkRecord>(this.globalKey('networks', id));
  }

  // CNI networks are kept apart: a conflist's name is the runtime's, not one of strand's
  // network names, so they neither clash with strand's networks nor show in their lists.

  getCniNetwork(id: string): Promise<NetworkRecord | undefined> {
    return id.startsWith('cni') ? this.getJson<NetworkRecord>(this.key('cni-networks', id)) : Promise.resolve(undefined);
  }

  /** Creates the record unless one exists (false then: another attachment made it first). */
  async createCniNetwork(rec: NetworkRecord): Promise<boolean> {
    try {
      await this.store.txn([{ key: this.key('cni-networks', rec.id), absent: true }], [{ op: 'put', key: this.key('cni-networks', rec.id), value: JSON.stringify(rec) }]);
      return true;
    } catch (err) {
      if (err instanceof StrandError && err.code === 'conflict') return false;
      throw err;
    }
  }

  listCniNetworks(): Promise<NetworkRecord[]> {
    return this.listJson<NetworkRecord>('cni-networks');
  }

  async updateCniNetwork(rec: NetworkRecord): Promise<void> {
    await this.store.put(this.key('cni-networks', rec.id), JSON.stringify(rec));
  }

  async deleteCniNetwork(rec: NetworkRecord): Promise<void> {
    await this.store.delete(this.key('cni-networks', rec.id));
  }

  /** By exact name, exact id, or unique id prefix (as docker does); this host's networks first. */
  async findNetwork(ref: string): Promise<NetworkRecord | undefined> {
    const byName = (await this.store.get(this.key('network-names', ref))) ?? (await this.store.get(this.globalKey('network-names', ref)));
    if (byName) return this.getNetwork(byName.value);
    const local = await this.byIdPrefix<NetworkRecord>(`${this.prefix}networks/`, ref, 'network');
    return local ?? this.byIdPrefix<NetworkRecord>(GLOBAL_NETWORKS, ref, 'network');
  }

  async createNetwork(rec: NetworkRecord): Promise<void> {
    if (rec.scope !== 'global') {
      if (await this.store.get(this.globalKey('network-names', rec.name))) throw new StrandError('exists', `a global network named "${rec.name}" already exists; choose another name`);
      return this.createNamed('networks', 'network-names', rec, 'network');
    }
    if (await this.store.get(this.key('network-names', rec.name))) throw new StrandError('exists', `a network named "${rec.name}" already exists on this host; choose another name`);
    try {
      await this.store.txn(
        [{ key: this.globalKey('network-names', rec.name), absent: true }, { key: this.globalKey('networks', rec.id), absent: true }],
        [
          { op: 'put', key: this.globalKey('networks', rec.id), value: JSON.stringify(rec) },
          { op: 'put', key: this.globalKey('network-names', rec.name), value: rec.id },
        ],
      );
    } catch (err) {
      if (err instanceof StrandError && err.code === 'conflict') throw new StrandError('exists', `a global network named "${rec.name}" already exists; choose another name or remove it first`);
      throw err;
    }
  }

  async deleteNetwork(rec: NetworkRecord): Promise<void> {
    const global = rec.scope === 'global';
    await this.store.txn([], [
      { op: 'delete', key: global ? this.globalKey('networks', rec.id) : this.key('networks', rec.id) },
      { op: 'delete', key: global ? this.globalKey('network-names', rec.name) : this.key('network-names', rec.name) },
    ]);
  }

  /** Whether a network of exactly this name exists here or cluster-wide (names, not id prefixes, must be unique). */
  async networkNameTaken(name: string): Promise<boolean> {
    return (await this.store.get(this.key('network-names', name))) !== undefined || (await this.store.get(this.globalKey('network-names', name))) !== undefined;
  }

  /** Endpoints of a global network on every host. */
  async globalEndpointsOfNetwork(networkId: string): Promise<GlobalEndpoint[]> {
    return (await this.store.list(`${GLOBAL_ENDPOINTS}${networkId}/`)).map((kv) => JSON.parse(kv.value) as GlobalEndpoint);
  }

  /** One endpoint's cluster-wide entry, if it is published. */
  async getGlobalEndpoint(networkId: string, endpointId: string): Promise<GlobalEndpoint | undefined> {
    const kv = await this.store.get(globalEndpointKey(networkId, endpointId));
    return kv ? (JSON.parse(kv.value) as GlobalEndpoint) : undefined;
  }

  // ---- sandboxes ----

  async sandboxNameTaken(name: string): Promise<boolean> {
    return (await this.store.get(this.key('sandbox-names', name))) !== undefined;
  }

  listSandboxes(): Promise<SandboxRecord[]> {
    return this.listJson<SandboxRecord>('sandboxes');
  }

  getSandbox(id: string): Promise<SandboxRecord | undefined> {
    return this.getJson<SandboxRecord>(this.key('sandboxes', id));
  }

  async findSandbox(ref: string): Promise<SandboxRecord | undefined> {
    const byName = await this.store.get(this.key('sandbox-names', ref));
    if (byName) return this.getSandbox(byName.value);
    return this.byIdPrefix<SandboxRecord>(`${this.prefix}sandboxes/`, ref, 'sandbox');
  }

  async createSandbox(rec: SandboxRecord): Promise<void> {
    await this.createNamed('sandboxes', 'sandbox-names', rec, 'sandbox');
  }

  async updateSandbox(rec: SandboxRecord): Promise<void> {
    await this.store.put(this.key('sandboxes', rec.id), JSON.stringify(rec));
  }

  async deleteSandbox(rec: SandboxRecord): Promise<void> {
    await this.store.txn([], [
      { op: 'delete', key: this.key('sandboxes', rec.id) },
      { op: 'delete', key: this.key('sandbox-names', rec.name) },
    ]);
  }

  // ---- endpoints ----

  listEndpoints(): Promise<EndpointRecord[]> {
    return this.listJson<EndpointRecord>('endpoints');
  }

  getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    return this.getJson<EndpointRecord>(this.key('endpoints', id));
  }

  endpointsOfNetwork(networkId: string): Promise<EndpointRecord[]> {
    return this.indexed(`by-network/${networkId}/`);
  }

  endpointsOfSandbox(sandboxId: string): Promise<EndpointRecord[]> {
    return this.indexed(`by-sandbox/${sandboxId}/`);
  }

  private async indexed(index: string): Promise<EndpointRecord[]> {
    const ids = (await this.store.list(this.prefix + index)).map((kv) => kv.value);
    const found = await Promise.all(ids.map((id) => this.getEndpoint(id)));
    return found.filter((e): e is EndpointRecord => e !== undefined);
  }

  private indexKeys(rec: EndpointRecord): string[] {
    const keys = [`${this.prefix}by-network/${rec.networkId}/${rec.id}`];
    // A detached endpoint (Docker's) has no sandbox of strand's to index it under.
    if (rec.sandboxId) keys.push(`${this.prefix}by-sandbox/${rec.sandboxId}/${rec.id}`);
    return keys;
  }

  /**
   * Saves an endpoint and claims its host ports in one transaction: a port
   * another endpoint holds on the same or a wildcard address is refused.
   */
  async saveEndpoint(rec: EndpointRecord, options: { global?: boolean } = {}): Promise<void> {
    const checks: TxnCheck[] = [];
    const ops: TxnOp[] = [
      { op: 'put', key: this.key('endpoints', rec.id), value: JSON.stringify(rec) },
      ...this.indexKeys(rec).map((key): TxnOp => ({ op: 'put', key, value: rec.id })),
    ];
    // Callers that do not say (re-saves after a port change, say) get the network's own scope.
    const global = options.global ?? (await this.store.get(this.globalKey('networks', rec.networkId))) !== undefined;
    if (global) {
      const shared: GlobalEndpoint = { id: rec.id, networkId: rec.networkId, hostId: this.hostId, mac: rec.mac, addresses: rec.addresses };
      ops.push({ op: 'put', key: globalEndpointKey(rec.networkId, rec.id), value: JSON.stringify(shared) });
    }
    const byPort = new Map<string, PortBinding[]>();
    for (const p of rec.ports) {
      const k = `${this.prefix}ports/${p.proto}/${p.hostPort}`;
      byPort.set(k, [...(byPort.get(k) ?? []), p]);
    }
    for (const [key, bindings] of byPort) {
      const kv = await this.store.get(key);
      const claims = kv ? (JSON.parse(kv.value) as PortClaim[]) : [];
      const others = claims.filter((c) => c.endpointId !== rec.id);
      for (const b of bindings) {
        const clash = others.find((c) => c.hostIp === '' || b.hostIp === '' || c.hostIp === b.hostIp);
        if (clash) {
          throw new StrandError('exists', `host port ${b.hostIp ? `${b.hostIp}:` : ''}${b.hostPort}/${b.proto} is already published by endpoint ${clash.endpointId.slice(0, 12)}${clash.hostIp ? ` on ${clash.hostIp}` : ''}; choose another host port`);
        }
      }
      const mine = bindings.map((b) => ({ hostIp: b.hostIp, endpointId: rec.id }));
      checks.push({ key, modRevision: kv?.modRevision ?? 0 });
      ops.push({ op: 'put', key, value: JSON.stringify([...others, ...mine]) });
    }
    await this.store.txn(checks, ops);
  }

  /** Removes an endpoint and its port claims. */
  async deleteEndpoint(rec: EndpointRecord): Promise<void> {
    const checks: TxnCheck[] = [];
    // The cluster-wide entry goes too; deleting it when the network is local is a no-op.
    const ops: TxnOp[] = [
      { op: 'delete', key: this.key('endpoints', rec.id) },
      ...this.indexKeys(rec).map((key): TxnOp => ({ op: 'delete', key })),
      { op: 'delete', key: globalEndpointKey(rec.networkId, rec.id) },
    ];
    const keys = new Set(rec.ports.map((p) => `${this.prefix}ports/${p.proto}/${p.hostPort}`));
    for (const key of keys) {
      const kv = await this.store.get(key);
      if (!kv) continue;
      const rest = (JSON.parse(kv.value) as PortClaim[]).filter((c) => c.endpointId !== rec.id);
      checks.push({ key, modRevision: kv.modRevision });
      ops.push(rest.length ? { op: 'put', key, value: JSON.stringify(rest) } : { op: 'delete', key });
    }
    await this.store.txn(checks, ops);
  }

  /** Host ports claimed for a protocol, for picking a free dynamic one. */
  async claimedPorts(proto: 'tcp' | 'udp'): Promise<Set<number>> {
    const kvs = await this.store.list(`${this.prefix}ports/${proto}/`);
    return new Set(kvs.map((kv) => Number(kv.key.slice(kv.key.lastIndexOf('/') + 1))));
  }

  // ---- helpers ----

  private async createNamed(kind: Kind, names: 'network-names' | 'sandbox-names', rec: { id: string; name: string }, what: string): Promise<void> {
    const nameKey = this.key(names, rec.name);
    try {
      await this.store.txn(
        [{ key: nameKey, absent: true }, { key: this.key(kind, rec.id), absent: true }],
        [
          { op: 'put', key: this.key(kind, rec.id), value: JSON.stringify(rec) },
          { op: 'put', key: nameKey, value: rec.id },
        ],
      );
    } catch (err) {
      if (err instanceof StrandError && err.code === 'conflict') {
        throw new StrandError('exists', `a ${what} named "${rec.name}" already exists; choose another name or remove it first`);
      }
      throw err;
    }
  }

  private async byIdPrefix<T>(under: string, ref: string, what: string): Promise<T | undefined> {
    if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
    const kvs = await this.store.list(`${under}${ref}`);
    if (kvs.length > 1) throw new StrandError('invalid', `"${ref}" matches ${kvs.length} ${what}s; give more of the id`);
    return kvs[0] ? (JSON.parse(kvs[0].value) as T) : undefined;
  }
}
