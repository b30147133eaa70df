// Network records: this host's, the cluster's global ones, and this host's
// CNI networks (kept apart, see getCniNetwork), with their name indexes.
import { StrandError } from '../../common/errors.js';
import type { NetworkRecord } from '../types.js';
import { GLOBAL_NETWORKS, type KeySpace } from './space.js';

export class NetworkRecords {
  constructor(private readonly s: KeySpace) {}

  /** This host's networks and the cluster's global ones. */
  async listNetworks(): Promise<NetworkRecord[]> {
    const global = (await this.s.store.list(GLOBAL_NETWORKS)).map((kv) => JSON.parse(kv.value) as NetworkRecord);
    return [...(await this.s.listJson<NetworkRecord>('networks')), ...global];
  }

  /** Any network an endpoint can be on: this host's, a CNI network of this host, a global one. */
  async getNetwork(id: string): Promise<NetworkRecord | undefined> {
    return (await this.s.getJson<NetworkRecord>(this.s.key('networks', id))) ?? (await this.getCniNetwork(id)) ?? this.s.getJson<NetworkRecord>(this.s.globalKey('networks', id));
  }

  // CNI networks are kept apart: a conflist's name is the runtime's, not one of strand's
  // network names, so they neither clash with strand's networks nor show in their lists.

  getCniNetwork(id: string): Promise<NetworkRecord | undefined> {
    return id.startsWith('cni') ? this.s.getJson<NetworkRecord>(this.s.key('cni-networks', id)) : Promise.resolve(undefined);
  }

  /** Creates the record unless one exists (false then: another attachment made it first). */
  async createCniNetwork(rec: NetworkRecord): Promise<boolean> {
    try {
      await this.s.store.txn([{ key: this.s.key('cni-networks', rec.id), absent: true }], [{ op: 'put', key: this.s.key('cni-networks', rec.id), value: JSON.stringify(rec) }]);
      return true;
    } catch (err) {
      if (err instanceof StrandError && err.code === 'conflict') return false;
      throw err;
    }
  }

  listCniNetworks(): Promise<NetworkRecord[]> {
    return this.s.listJson<NetworkRecord>('cni-networks');
  }

  async updateCniNetwork(rec: NetworkRecord): Promise<void> {
    await this.s.store.put(this.s.key('cni-networks', rec.id), JSON.stringify(rec));
  }

  async deleteCniNetwork(rec: NetworkRecord): Promise<void> {
    await this.s.store.delete(this.s.key('cni-networks', rec.id));
  }

  /** By exact name, exact id, or unique id prefix (as docker does); this host's networks first. */
  async findNetwork(ref: string): Promise<NetworkRecord | undefined> {
    const byName = (await this.s.store.get(this.s.key('network-names', ref))) ?? (await this.s.store.get(this.s.globalKey('network-names', ref)));
    if (byName) return this.getNetwork(byName.value);
    const local = await this.s.byIdPrefix<NetworkRecord>(`${this.s.prefix}networks/`, ref, 'network');
    return local ?? this.s.byIdPrefix<NetworkRecord>(GLOBAL_NETWORKS, ref, 'network');
  }

  async createNetwork(rec: NetworkRecord): Promise<void> {
    if (rec.scope !== 'global') {
      if (await this.s.store.get(this.s.globalKey('network-names', rec.name))) throw new StrandError('exists', `a global network named "${rec.name}" already exists; choose another name`);
      return this.s.createNamed('networks', 'network-names', rec, 'network');
    }
    if (await this.s.store.get(this.s.key('network-names', rec.name))) throw new StrandError('exists', `a network named "${rec.name}" already exists on this host; choose another name`);
    try {
      await this.s.store.txn(
        [{ key: this.s.globalKey('network-names', rec.name), absent: true }, { key: this.s.globalKey('networks', rec.id), absent: true }],
        [
          { op: 'put', key: this.s.globalKey('networks', rec.id), value: JSON.stringify(rec) },
          { op: 'put', key: this.s.globalKey('network-names', rec.name), value: rec.id },
        ],
      );
    } catch (err) {
      if (err instanceof StrandError && err.code === 'conflict') throw new StrandError('exists', `a global network named "${rec.name}" already exists; choose another name or remove it first`);
      throw err;
    }
  }

  async deleteNetwork(rec: NetworkRecord): Promise<void> {
    const global = rec.scope === 'global';
    await this.s.store.txn([], [
      { op: 'delete', key: global ? this.s.globalKey('networks', rec.id) : this.s.key('networks', rec.id) },
      { op: 'delete', key: global ? this.s.globalKey('network-names', rec.name) : this.s.key('network-names', rec.name) },
    ]);
  }

  /** Whether a network of exactly this name exists here or cluster-wide (names, not id prefixes, must be unique). */
  async networkNameTaken(name: string): Promise<boolean> {
    return (await this.s.store.get(this.s.key('network-names', name))) !== undefined || (await this.s.store.get(this.s.globalKey('network-names', name))) !== undefined;
  }
}
