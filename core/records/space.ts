// The keys core's records live under, and what the records of every CNM
// object share: reading and writing JSON, names kept unique, ids found by
// their prefix.
import { StrandError } from '../../common/errors.js';
import type { Store } from '../../store/types.js';

export type Kind = 'networks' | 'cni-networks' | 'endpoints' | 'sandboxes';

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

export class KeySpace {
  readonly prefix: string;

  constructor(
    readonly store: Store,
    readonly hostId: string,
  ) {
    if (hostId === 'global') throw new StrandError('invalid', 'host id "global" is reserved for cluster-wide records; choose another --host-id');
    this.prefix = `core/${hostId}/`;
  }

  key(kind: Kind | 'network-names' | 'sandbox-names', id: string): string {
    return `${this.prefix}${kind}/${id}`;
  }

  globalKey(kind: 'networks' | 'network-names', id: string): string {
    return `${GLOBAL_PREFIX}${kind}/${id}`;
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const kv = await this.store.get(key);
    return kv ? (JSON.parse(kv.value) as T) : undefined;
  }

  async listJson<T>(kind: Kind): Promise<T[]> {
    return (await this.store.list(`${this.prefix}${kind}/`)).map((kv) => JSON.parse(kv.value) as T);
  }

  async createNamed(kind: Kind, names: 'network-names' | 'sandbox-names', rec: { id: string; name: string }, what: string): Promise<void> {
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

  async byIdPrefix<T>(under: string, ref: string, what: string): Promise<T | undefined> {
    if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
    const kvs = await this.store.list(`${under}${ref}`);
    if (kvs.length > 1) throw new StrandError('invalid', `"${ref}" matches ${kvs.length} ${what}s; give more of the id`);
    return kvs[0] ? (JSON.parse(kvs[0].value) as T) : undefined;
  }
}
