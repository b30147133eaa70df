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

/** Claims `wanted`, or the lowest free VNI; a lost race moves on to the next free one. */
export async function allocateVni(store: Store, networkId: string, wanted?: number): Promise<number> {
  if (wanted !== undefined) {
    const holder = await store.get(vniKey(wanted));
    if (holder?.value === networkId) return wanted;
    if (holder) throw new StrandError('exists', `VNI ${wanted} is already used by network ${holder.value.slice(0, 12)}; choose another vni or leave it out`);
    try {
      await store.txn([{ key: vniKey(wanted), absent: true }], [{ op: 'put', key: vniKey(wanted), value: networkId }]);
      return wanted;
    } catch (err) {
      if (err instanceof StrandError && err.code === 'conflict') throw new StrandError('exists', `VNI ${wanted} was just taken by another network; choose another vni or leave it out`);
      throw err;
    }
  }
  for (let round = 0; round < 10; round++) {
    const taken = new Set((await store.list(VNI_PREFIX)).map((kv) => Number(kv.key.slice(VNI_PREFIX.length))));
    let vni = FIRST_VNI;
    // Each conflict means someone took that VNI: try the next free one from the same listing.
    for (let tries = 0; tries < 64; tries++) {
      while (taken.has(vni)) vni++;
      if (vni > LAST_VNI) throw new StrandError('exhausted', 'every VXLAN network identifier is taken; remove unused overlay networks');
      try {
        await store.txn([{ key: vniKey(vni), absent: true }], [{ op: 'put', key: vniKey(vni), value: networkId }]);
        return vni;
      } catch (err) {
        if (!(err instanceof StrandError && err.code === 'conflict')) throw err;
        taken.add(vni);
      }
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
