// Inside a sandbox: bring the endpoint's interface in, give it its name,
// addresses and routes, and bring it up.
import { existsSync } from 'node:fs';
import { Netlink, openNetns, type NetNs } from '../netlink/index.js';
import type { EndpointRecord, JoinInfo } from './types.js';

export function configureEndpoint(host: Netlink, sandboxNs: NetNs, endpoint: EndpointRecord, join: JoinInfo): void {
  if (!join.inSandbox) host.links.set(join.srcName, { netns: sandboxNs });
  const nl = Netlink.open(sandboxNs);
  try {
    if (join.srcName !== endpoint.ifName) nl.links.set(join.srcName, { name: endpoint.ifName });
    for (const cidr of endpoint.addresses) nl.addresses.add(endpoint.ifName, cidr, { noDad: true, replace: true });
    nl.links.set(endpoint.ifName, { up: true });
    nl.links.set('lo', { up: true });
    if (!join.noDefaultRoute) {
      // The first network with a gateway keeps the default route; later ones add only their subnet.
      const have = new Set(nl.routes.list().filter((r) => r.dst === 'default').map((r) => r.family));
      if (join.gateway && !have.has(4)) nl.routes.add({ dst: 'default', gateway: join.gateway, dev: endpoint.ifName, family: 4 });
      if (join.gatewayV6 && !have.has(6)) nl.routes.add({ dst: 'default', gateway: join.gatewayV6, dev: endpoint.ifName, family: 6 });
    }
    for (const r of join.routes) {
      nl.routes.replace({ dst: r.dst, dev: endpoint.ifName, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.onLink ? { onLink: true } : {}) });
    }
  } finally {
    nl.close();
  }
}

/** Takes an interface out of a namespace that still exists (a macvlan lives only there; a veth would go with its host end anyway). */
export function removeInterfaceIn(netnsPath: string, ifName: string): void {
  if (!existsSync(netnsPath)) return;
  const ns = openNetns(netnsPath);
  const nl = Netlink.open(ns);
  try {
    nl.links.delete(ifName, { missingOk: true });
  } finally {
    nl.close();
    ns.close();
  }
}
