// How a CNI verb reaches core: through the daemon's controller when `strand
// daemon` runs the verb, else through one opened for this call on the store
// and run dir the runtime's environment names, and closed after it.
import { openController } from '../../runtime/index.js';
import type { NetNs } from '../../netlink/index.js';
import type { CniAttachRequest, Controller } from '../../core/controller.js';
import type { CniRequest, CniResult } from './protocol/types.js';
import { attachmentId } from './protocol/attachment.js';

export async function withController<T>(daemon: Controller | undefined, req: CniRequest, fn: (ctl: Controller) => Promise<T>): Promise<T> {
  if (daemon) return fn(daemon);
  const env = req.env ?? {};
  const ctl = await openController({ ...(env.STRAND_STORE ? { store: env.STRAND_STORE } : {}), ...(env.STRAND_RUN_DIR ? { runDir: env.STRAND_RUN_DIR } : {}) });
  try {
    return await fn(ctl);
  } finally {
    await ctl.close();
  }
}

/** GC: this host's attachments of the network that the runtime no longer lists go, and the network after the last. */
export async function collectAttachments(daemon: Controller | undefined, network: string, req: CniRequest): Promise<void> {
  const keep = new Set((req.validAttachments ?? []).map((a) => attachmentId(network, a.containerId, a.ifName)));
  await withController(daemon, req, async (ctl) => {
    for (const ep of await ctl.cniAttachments(network)) if (!keep.has(ep.id)) await ctl.detachCni(network, ep.id);
  });
}

/** What every plugin's attachment carries: its id, container, interface and namespace, the IPAM result's addresses, the MAC asked for. */
export function attachmentOf(req: CniRequest, ns: NetNs, ipam: CniResult | undefined, mac: string | undefined): Pick<CniAttachRequest, 'id' | 'containerId' | 'ifName' | 'netns' | 'ns' | 'addresses' | 'mac'> {
  return {
    id: attachmentId(req.config.name, req.containerId, req.ifName),
    containerId: req.containerId,
    ifName: req.ifName,
    netns: req.netns,
    ns,
    addresses: (ipam?.ips ?? []).map((ip) => ip.address),
    ...(mac ? { mac } : {}),
  };
}
