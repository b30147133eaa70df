// Endpoint records, their indexes by network and by sandbox, the host-port
// claims saved with them, and the cluster-wide entries of endpoints on global
// networks.
import { StrandError } from '../../common/errors.js';
import type { TxnCheck, TxnOp } from '../../store/types.js';
import type { EndpointRecord, PortBinding } from '../types.js';
import { GLOBAL_ENDPOINTS, globalEndpointKey, type GlobalEndpoint, type KeySpace } from './space.js';

interface PortClaim {
  hostIp: string;
  endpointId: string;
}

export class EndpointRecords {
  constructor(private readonly s: KeySpace) {}

  listEndpoints(): Promise<EndpointRecord[]> {
    return this.s.listJson<EndpointRecord>('endpoints');
  }

  getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    return this.s.getJson<EndpointRecord>(this.s.key('endpoints', id));
  }

  endpointsOfNetwork(networkId: string): Promise<EndpointRecord[]> {
    return this.indexed(`by-network/${networkId}/`);
  }

  endpointsOfSandbox(sandboxId: string): Promise<EndpointRecord[]> {
    return this.indexed(`by-sandbox/${sandboxId}/`);
  }

  private async indexed(index: string): Promise<EndpointRecord[]> {
    const ids = (await this.s.store.list(this.s.prefix + index)).map((kv) => kv.value);
    const found = await Promise.all(ids.map((id) => this.getEndpoint(id)));
    return found.filter((e): e is EndpointRecord => e !== undefined);
  }

  private indexKeys(rec: EndpointRecord): string[] {
    const keys = [`${this.s.prefix}by-network/${rec.networkId}/${rec.id}`];
    // A detached endpoint (Docker's) has no sandbox of strand's to index it under.
    if (rec.sandboxId) keys.push(`${this.s.prefix}by-sandbox/${rec.sandboxId}/${rec.id}`);
    return keys;
  }

  /**
   * Saves an endpoint and claims its host ports in one transaction: a port
   * another endpoint holds on the same or a wildcard address is refused.
   */
  async saveEndpoint(rec: EndpointRecord, options: { global?: boolean } = {}): Promise<void> {
    const checks: TxnCheck[] = [];
    const ops: TxnOp[] = [
      { op: 'put', key: this.s.key('endpoints', rec.id), value: JSON.stringify(rec) },
      ...this.indexKeys(rec).map((key): TxnOp => ({ op: 'put', key, value: rec.id })),
    ];
    // Callers that do not say (re-saves after a port change, say) get the network's own scope.
    const global = options.global ?? (await this.s.store.get(this.s.globalKey('networks', rec.networkId))) !== undefined;
    if (global) {
      const shared: GlobalEndpoint = { id: rec.id, networkId: rec.networkId, hostId: this.s.hostId, mac: rec.mac, addresses: rec.addresses };
      ops.push({ op: 'put', key: globalEndpointKey(rec.networkId, rec.id), value: JSON.stringify(shared) });
    }
    const byPort = new Map<string, PortBinding[]>();
    for (const p of rec.ports) {
      const k = `${this.s.prefix}ports/${p.proto}/${p.hostPort}`;
      byPort.set(k, [...(byPort.get(k) ?? []), p]);
    }
    for (const [key, bindings] of byPort) {
      const kv = await this.s.store.get(key);
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
    await this.s.store.txn(checks, ops);
  }

  /** Removes an endpoint and its port claims. */
  async deleteEndpoint(rec: EndpointRecord): Promise<void> {
    const checks: TxnCheck[] = [];
    // The cluster-wide entry goes too; deleting it when the network is local is a no-op.
    const ops: TxnOp[] = [
      { op: 'delete', key: this.s.key('endpoints', rec.id) },
      ...this.indexKeys(rec).map((key): TxnOp => ({ op: 'delete', key })),
      { op: 'delete', key: globalEndpointKey(rec.networkId, rec.id) },
    ];
    const keys = new Set(rec.ports.map((p) => `${this.s.prefix}ports/${p.proto}/${p.hostPort}`));
    for (const key of keys) {
      const kv = await this.s.store.get(key);
      if (!kv) continue;
      const rest = (JSON.parse(kv.value) as PortClaim[]).filter((c) => c.endpointId !== rec.id);
      checks.push({ key, modRevision: kv.modRevision });
      ops.push(rest.length ? { op: 'put', key, value: JSON.stringify(rest) } : { op: 'delete', key });
    }
    await this.s.store.txn(checks, ops);
  }

  /** Host ports claimed for a protocol, for picking a free dynamic one. */
  async claimedPorts(proto: 'tcp' | 'udp'): Promise<Set<number>> {
    const kvs = await this.s.store.list(`${this.s.prefix}ports/${proto}/`);
    return new Set(kvs.map((kv) => Number(kv.key.slice(kv.key.lastIndexOf('/') + 1))));
  }


  /** Endpoints of a global network on every host. */
  async globalEndpointsOfNetwork(networkId: string): Promise<GlobalEndpoint[]> {
    return (await this.s.store.list(`${GLOBAL_ENDPOINTS}${networkId}/`)).map((kv) => JSON.parse(kv.value) as GlobalEndpoint);
  }

  /** One endpoint's cluster-wide entry, if it is published. */
  async getGlobalEndpoint(networkId: string, endpointId: string): Promise<GlobalEndpoint | undefined> {
    const kv = await this.s.store.get(globalEndpointKey(networkId, endpointId));
    return kv ? (JSON.parse(kv.value) as GlobalEndpoint) : undefined;
  }
}
