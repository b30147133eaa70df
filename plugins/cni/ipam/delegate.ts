// Asking the IPAM plugin a main plugin's config names: strand-ipam runs in
// this process (no second process start), any other (host-local, ...) is
// executed from CNI_PATH as libcni would.
import { invokePlugin } from '../protocol/exec.js';
import { ipamHandlers } from './plugin.js';
import { CniError, CNI_CODES, type CniCommand, type CniRequest, type CniResult } from '../protocol/types.js';

export const STRAND_IPAM = 'strand-ipam';

export async function delegateIpam(req: CniRequest, command: Exclude<CniCommand, 'VERSION'>): Promise<CniResult | undefined> {
  const type = req.config.ipam?.type;
  if (!type) throw new CniError(CNI_CODES.invalidConfig, 'missing "ipam.type"');
  const sub: CniRequest = { ...req, command };
  if (type === STRAND_IPAM) {
    switch (command) {
      case 'ADD':
        return ipamHandlers.add(sub);
      case 'DEL':
        return void (await ipamHandlers.del(sub));
      case 'CHECK':
        return void (await ipamHandlers.check(sub));
      case 'GC':
        return void (await ipamHandlers.gc?.(sub));
      case 'STATUS':
        return void (await ipamHandlers.status?.(sub));
    }
  }
  return invokePlugin({
    type,
    path: req.path,
    command,
    containerId: req.containerId,
    netns: req.netns,
    ifName: req.ifName,
    args: req.args,
    config: req.config,
  });
}
