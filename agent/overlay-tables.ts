// Peer tables of the overlay: what each local vxlan device should hold (one
// FDB entry per remote endpoint MAC → its host's VTEP, one permanent
// neighbour entry per remote IP → that MAC), what it holds, and the changes
// that make the second the first. Level-triggered: the same function serves
// a single watch event and a full resync.
import type { FdbEntry, Link, Neighbour, Netlink } from '../netlink/index.js';
import type { GlobalEndpoint } from '../core/records/index.js';
import type { NetworkRecord } from '../core/types.js';
import type { HostRecord } from '../cluster/hosts.js';
import type { ClusterDataPlane } from '../core/types.js';

export interface Fdb {
  mac: string;
  dst: string;
}
export interface Neigh {
  ip: string;
  mac: string;
}

export interface PeerTable {
  network: string;
  networkId: string;
  vni: number;
  device: string;
  /** Whether this host has the network's vxlan device (only hosts with endpoints on it do). */
  present: boolean;
  desired: { fdb: Fdb[]; neigh: Neigh[] };
  actual: { fdb: Fdb[]; neigh: Neigh[] };
  /** The network's MTU from the live hosts' underlays (or --opt mtu), and the vxlan device's now (0 when absent). */
  mtu: { desired: number; actual: number };
}

/** The cluster as this host last read it from the store. */
export interface ClusterView {
  hosts: Map<string, HostRecord>;
  networks: Map<string, NetworkRecord>;
  /** By endpoint id. */
  endpoints: Map<string, GlobalEndpoint>;
}

export const emptyView = (): ClusterView => ({ hosts: new Map(), networks: new Map(), endpoints: new Map() });

const ZERO_MAC = '00:00:00:00:00:00';

/** Desired entries for one network: endpoints on other hosts whose agent holds a live lease. */
export function desiredFor(view: ClusterView, networkId: string, selfHostId: string): { fdb: Fdb[]; neigh: Neigh[] } {
  const fdb: Fdb[] = [];
  const neigh: Neigh[] = [];
  for (const ep of view.endpoints.values()) {
    if (ep.networkId !== networkId || ep.hostId === selfHostId || !ep.mac) continue;
    const host = view.hosts.get(ep.hostId);
    if (!host) continue;
    fdb.push({ mac: ep.mac, dst: host.vtep });
    for (const a of ep.addresses) neigh.push({ ip: a.split('/')[0]!, mac: ep.mac });
  }
  return { fdb, neigh };
}

/** One dump of the host's links, FDB and neighbours, shared by every network's table. */
interface KernelSnapshot {
  links: Map<string, Link>;
  fdb: FdbEntry[];
  neigh: Neighbour[];
}

function snapshot(nl: Netlink): KernelSnapshot {
  return { links: new Map(nl.links.list().map((l) => [l.name, l])), fdb: nl.neighbours.listFdb(), neigh: nl.neighbours.list() };
}

function actualIn(k: KernelSnapshot, device: string): { fdb: Fdb[]; neigh: Neigh[] } | undefined {
  const link = k.links.get(device);
  if (!link || link.kind !== 'vxlan') return undefined;
  const fdb = k.fdb.filter((e) => e.index === link.index && e.self && e.dst !== undefined && e.mac !== ZERO_MAC).map((e) => ({ mac: e.mac, dst: e.dst! }));
  const neigh = k.neigh.filter((n) => n.index === link.index && n.permanent && n.mac !== undefined).map((n) => ({ ip: n.ip, mac: n.mac! }));
  return { fdb, neigh };
}

/** What the kernel holds on a vxlan device: unicast FDB entries with a VTEP, permanent neighbours. */
export function actualFor(nl: Netlink, device: string): { fdb: Fdb[]; neigh: Neigh[] } | undefined {
  return actualIn(snapshot(nl), device);
}

export function tables(nl: Netlink, view: ClusterView, selfHostId: string, plane: ClusterDataPlane): PeerTable[] {
  const overlays = [...view.networks.values()].filter((n) => n.driver === 'overlay');
  if (!overlays.length) return [];
  // One dump for all networks: the cost of an apply does not grow with the number of networks.
  const k = snapshot(nl);
  const out: PeerTable[] = [];
  for (const net of overlays) {
    const device = plane.tunnelDevice(net.id);
    const actual = actualIn(k, device);
    const ownMtu = view.hosts.get(selfHostId)?.underlayMtu ?? Infinity;
    out.push({
      network: net.name,
      networkId: net.id,
      vni: Number(net.driverState.vni),
      device,
      present: actual !== undefined,
      desired: desiredFor(view, net.id, selfHostId),
      actual: actual ?? { fdb: [], neigh: [] },
      mtu: { desired: plane.clusterMtu(net, view.hosts.values(), ownMtu), actual: k.links.get(device)?.mtu ?? 0 },
    });
  }
  return out.sort((a, b) => a.network.localeCompare(b.network));
}

export interface Changes {
  addFdb: Fdb[];
  delFdb: Fdb[];
  setNeigh: Neigh[];
  delNeigh: Neigh[];
}

export function diff(t: PeerTable): Changes {
  const want = new Map(t.desired.fdb.map((f) => [f.mac, f.dst]));
  const have = new Map(t.actual.fdb.map((f) => [f.mac, f.dst]));
  const wantN = new Map(t.desired.neigh.map((n) => [n.ip, n.mac]));
  const haveN = new Map(t.actual.neigh.map((n) => [n.ip, n.mac]));
  return {
    addFdb: t.desired.fdb.filter((f) => have.get(f.mac) !== f.dst),
    // An entry for a wanted MAC but another VTEP is replaced by addFdb, not deleted.
    delFdb: t.actual.fdb.filter((f) => !want.has(f.mac)),
    setNeigh: t.desired.neigh.filter((n) => haveN.get(n.ip) !== n.mac),
    delNeigh: t.actual.neigh.filter((n) => !wantN.has(n.ip)),
  };
}

export const changeCount = (c: Changes): number => c.addFdb.length + c.delFdb.length + c.setNeigh.length + c.delNeigh.length;

/** Applies the changes to one device; an entry already gone counts as removed. */
export function apply(nl: Netlink, device: string, c: Changes): void {
  for (const f of c.delFdb) nl.neighbours.deleteFdb({ dev: device, mac: f.mac, dst: f.dst }, { missingOk: true });
  for (const n of c.delNeigh) nl.neighbours.delete(device, n.ip, { missingOk: true });
  // FDB before neighbour: once a container resolves the IP, the MAC already has somewhere to go.
  for (const f of c.addFdb) nl.neighbours.addFdb({ dev: device, mac: f.mac, dst: f.dst });
  for (const n of c.setNeigh) nl.neighbours.setPermanent(device, n.ip, n.mac);
}
