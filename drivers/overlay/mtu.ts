// The overlay's MTU. Every host of a network must use the same one, and it
// must fit the smallest underlay in the cluster: a frame that fits its
// sender's underlay but not the receiver's is dropped silently on the way
// (no ICMP comes back from a bridge or switch). So, unless --opt mtu=N fixes
// it, an overlay network's MTU is the smallest underlay MTU among the live
// hosts minus the VXLAN overhead, and it follows that minimum when hosts
// join, leave or change: the vxlan device, the bridge, the host ends of the
// containers' veths and the containers' own ends all get the new value.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Netlink, openNetns, type Link, type NetNs } from '../../netlink/index.js';
import type { NetworkRecord } from '../../core/types.js';
import type { HostRecord } from '../../cluster/hosts.js';
import { VXLAN_OVERHEAD, overlayBridgeName, vxlanName } from './names.js';

/** Where container runtimes keep named network namespaces: strand and CNI runtimes, Docker. */
const NAMESPACE_DIRS = ['/run/netns', '/run/docker/netns'];

/** The MTU the network's devices should have, given the live hosts and this host's own underlay MTU now. */
export function overlayMtu(network: NetworkRecord, hosts: Iterable<Pick<HostRecord, 'underlayMtu'>>, ownUnderlayMtu: number): number {
  if (network.driverState.mtu) return Number(network.driverState.mtu);
  let smallest = ownUnderlayMtu;
  for (const h of hosts) smallest = Math.min(smallest, h.underlayMtu);
  return smallest - VXLAN_OVERHEAD;
}

/**
 * Gives the network's devices on this host the MTU: vxlan device, bridge,
 * veth ports, and each veth's other end inside its container, found by the
 * namespace id the port reports (containers strand, a CNI runtime or Docker
 * made alike). Returns what it changed, and notes for container ends it
 * could not find (a namespace not named under NAMESPACE_DIRS).
 */
export function setOverlayMtu(nl: Netlink, networkId: string, mtu: number): string[] {
  const links = nl.links.list();
  const bridge = links.find((l) => l.name === overlayBridgeName(networkId) && l.kind === 'bridge');
  const vxlan = links.find((l) => l.name === vxlanName(networkId) && l.kind === 'vxlan');
  const changed: string[] = [];
  const set = (l: Link): void => {
    if (l.mtu === mtu) return;
    nl.links.set(l.index, { mtu });
    changed.push(l.name);
  };
  const ports = bridge ? links.filter((l) => l.master === bridge.index && l.kind === 'veth') : [];
  const peers = ports.filter((p) => p.parentNetnsId !== undefined && p.parentIndex !== undefined);
  // Senders first when lowering, receivers first when raising: no end ever sends more than the other takes.
  const lowering = (vxlan ?? bridge)?.mtu === undefined || (vxlan ?? bridge)!.mtu > mtu;
  if (lowering) changed.push(...setPeers(nl, peers, mtu));
  if (vxlan) set(vxlan);
  for (const p of ports) set(p);
  if (bridge) set(bridge);
  if (!lowering) changed.push(...setPeers(nl, peers, mtu));
  return changed;
}

/** The containers' ends of these veths: every namespace under NAMESPACE_DIRS is asked its id until all are found. */
function setPeers(nl: Netlink, ports: Link[], mtu: number): string[] {
  const byNsid = new Map<number, Link[]>();
  for (const p of ports) byNsid.set(p.parentNetnsId!, [...(byNsid.get(p.parentNetnsId!) ?? []), p]);
  const changed: string[] = [];
  for (const path of namespacePaths()) {
    if (!byNsid.size) return changed;
    let ns: NetNs;
    try {
      ns = openNetns(path);
    } catch {
      continue; // gone meanwhile, or not a namespace
    }
    try {
      const id = nl.netnsIdOf(ns);
      const mine = id === undefined ? undefined : byNsid.get(id);
      if (!mine) continue;
      byNsid.delete(id!);
      const inside = Netlink.open(ns);
      try {
        for (const p of mine) {
          const peer = inside.links.find(p.parentIndex!);
          if (!peer || peer.mtu === mtu) continue;
          inside.links.set(peer.index, { mtu });
          changed.push(`${peer.name} in ${path}`);
        }
      } finally {
        inside.close();
      }
    } finally {
      ns.close();
    }
  }
  // Containers whose namespace is not named under NAMESPACE_DIRS keep their MTU; say so rather than pass over them.
  for (const left of byNsid.values()) for (const p of left) changed.push(`(not found: the container end of ${p.name})`);
  return changed;
}

function namespacePaths(): string[] {
  const out: string[] = [];
  for (const dir of NAMESPACE_DIRS) {
    try {
      for (const name of readdirSync(dir)) out.push(join(dir, name));
    } catch {
      // no such directory on this host
    }
  }
  return out;
}
