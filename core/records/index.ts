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
import type { Store } from '../../store/types.js';
import { KeySpace } from './space.js';
import { NetworkRecords } from './networks.js';
import { EndpointRecords } from './endpoints.js';
import { SandboxRecords } from './sandboxes.js';

export { GLOBAL_PREFIX, GLOBAL_NETWORKS, GLOBAL_ENDPOINTS, globalEndpointKey, type GlobalEndpoint } from './space.js';

/** Core's records in the store, one part per CNM object over one key space. */
export class Records {
  readonly networks: NetworkRecords;
  readonly endpoints: EndpointRecords;
  readonly sandboxes: SandboxRecords;
  private readonly space: KeySpace;

  constructor(store: Store, hostId: string) {
    this.space = new KeySpace(store, hostId);
    this.networks = new NetworkRecords(this.space);
    this.endpoints = new EndpointRecords(this.space);
    this.sandboxes = new SandboxRecords(this.space);
  }

  get store(): Store {
    return this.space.store;
  }

  get hostId(): string {
    return this.space.hostId;
  }
}
