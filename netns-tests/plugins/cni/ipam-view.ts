// What strand-ipam holds in a store, read through strand's own IPAM service
// (not through the plugin under test): the addresses of a CNI network's
// pools, gateways left out.
import { Ipam } from '../../../ipam/index.js';
import { openStore } from '../../../store/index.js';

export interface Held {
  address: string;
  containerId: string;
  ifName: string;
}

/** Every non-gateway address of `network`'s pools in `storeUrl`, sorted by address. */
export async function heldAddresses(storeUrl: string, network: string): Promise<Held[]> {
  const store = await openStore(storeUrl);
  try {
    const ipam = new Ipam({ store });
    const out: Held[] = [];
    for (const space of ['local', 'global'] as const) {
      for (const pool of await ipam.listPools(space)) {
        if (pool.options['cni.network'] !== network) continue;
        for (const a of await ipam.listAllocations(pool.id)) {
          if (a.gateway) continue;
          out.push({ address: a.address, containerId: a.owner.containerId ?? '', ifName: a.owner.ifName ?? '' });
        }
      }
    }
    return out.sort((x, y) => x.address.localeCompare(y.address, 'en', { numeric: true }));
  } finally {
    await store.close();
  }
}
