// VXLAN network identifiers, unique cluster-wide: overlay/vni/<vni> names the
// network that holds it, claimed by compare-and-swap so two hosts creating
// networks at once never get the same one.
import { StrandError } from '../../common/errors.js';
import type { Store } from '../../store/types.js';

const VNI_PREFIX = 'overlay/vni/';
/** Like Docker's overlay: start above the VLAN-sized range that other tooling tends to use. */
export const FIRST_VNI = 4096;
export const LAST_VNI = 0xffffff;

const vniKey = (vni: number): string => VNI_PREFIX + String(vni).padStart(8, '0');

/** Claims `wanted`, or the lowest free VNI; retries when another host wins the race. */
export async function allocateVni(store: Store, networkId: string, wanted?: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const taken = new Set((await store.list(VNI_PREFIX)).map((kv) => Number(kv.key.slice(VNI_PREFIX.length))));
    let vni = wanted ?? FIRST_VNI;
    if (wanted !== undefined && taken.has(wanted)) {
      const holder = await store.get(vniKey(wanted));
      if (holder?.value === networkId) return wanted;
      throw new StrandError('exists', `VNI ${wanted} is already used by network ${holder?.value.slice(0, 12) ?? '?'}; choose another vni or leave it out`);
    }
    while (taken.has(vni)) vni++;
    if (vni > LAST_VNI) throw new StrandError('exhausted', 'every VXLAN network identifier is taken; remove unused overlay networks');
    try {
      await store.txn([{ key: vniKey(vni), absent: true }], [{ op: 'put', key: vniKey(vni), value: networkId }]);
      return vni;
    } catch (err) {
      if (!(err instanceof StrandError && err.code === 'conflict')) throw err;
    }
  }
  throw new StrandError('conflict', 'could not claim a VNI: too many concurrent network creations; retry', { retryable: true });
}

/** Frees a VNI if this network still holds it. */
export async function releaseVni(store: Store, networkId: string, vni: number): Promise<void> {
  const kv = await store.get(vniKey(vni));
  if (kv?.value !== networkId) return;
  await store.delete(vniKey(vni), { expectRevision: kv.modRevision }).catch((err) => {
    if (!(err instanceof StrandError && err.code === 'conflict')) throw err;
  });
}
