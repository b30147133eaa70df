// CHECK's container side, common to plugins that put one interface in the
// container: the interface, its MAC, addresses and routes as the ADD result
// (prevResult) says, read from the namespace itself.
import type { Netlink } from '../../../netlink/index.js';
import { CniError, CNI_CODES, type CniRequest, type CniResult } from './types.js';

export function failCheck(msg: string): never {
  throw new CniError(CNI_CODES.internal, msg);
}

export function checkContainerSide(inside: Netlink, req: CniRequest, prev: CniResult): void {
  const ctr = inside.links.find(req.ifName) ?? failCheck(`container interface ${req.ifName} does not exist in ${req.netns}`);
  const want = prev.interfaces?.find((i) => i.name === req.ifName && i.sandbox);
  if (want?.mac && ctr.mac !== want.mac) failCheck(`container interface ${req.ifName} has MAC ${ctr.mac}, the ADD result says ${want.mac}`);
  const have = new Set(inside.addresses.list({ dev: req.ifName }).map((a) => a.cidr));
  for (const ip of prev.ips ?? []) if (!have.has(ip.address)) failCheck(`address ${ip.address} is missing from ${req.ifName}`);
  const routes = inside.routes.list();
  for (const r of prev.routes ?? []) {
    const dst = r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst;
    if (!routes.some((x) => x.dst === dst && (!r.gw || x.gateway === r.gw))) failCheck(`route to ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing in the container`);
  }
}
