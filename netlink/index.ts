// The kernel layer's front: one Netlink per network namespace, with its
// socket made inside that namespace so every request acts there.
import { RtnlSocket } from './socket.js';
import { Links } from './links.js';
import { Addresses } from './addresses.js';
import { Routes } from './routes.js';
import { Neighbours } from './neighbours.js';
import { withNetns, type NetNs } from './namespace.js';
import { netnsIdOf } from './nsid.js';

export class Netlink {
  readonly links: Links;
  readonly addresses: Addresses;
  readonly routes: Routes;
  readonly neighbours: Neighbours;

  private constructor(private readonly sock: RtnlSocket) {
    this.links = new Links(sock);
    this.addresses = new Addresses(sock, this.links);
    this.routes = new Routes(sock, this.links);
    this.neighbours = new Neighbours(sock, this.links);
  }

  /** Talks to the given namespace, or to the one this thread is in now. */
  static open(ns?: NetNs): Netlink {
    return new Netlink(ns ? withNetns(ns, () => new RtnlSocket()) : new RtnlSocket());
  }

  /** The id this namespace knows `ns` by (what a veth reports as its peer's namespace), if it has given it one. */
  netnsIdOf(ns: NetNs): number | undefined {
    return netnsIdOf(this.sock, ns);
  }

  close(): void {
    this.sock.close();
  }
}

export { NetNs, createNetns, deleteNetns, openNetns, openNetnsByPid, currentNetns, listNetns, withNetns, readSysctl, writeSysctl, validateNetnsName } from './namespace.js';
export { validateLinkName, LINK_KINDS } from './links.js';
export type { Link, LinkSpec, LinkChange, LinkRef, LinkKind, MacvlanMode } from './links.js';
export type { Address, AddAddressOptions } from './addresses.js';
export type { Route, RouteSpec, Scope } from './routes.js';
export type { Neighbour, FdbEntry, FdbSpec } from './neighbours.js';
export { KernelError } from './errors.js';
export { spawnInNamespaces, type SandboxNamespaces } from './process-namespaces.js';
export { applySteering, onlineCpus, steeringPlan, type SteeringPlan } from './cpu-steering.js';
export { ipFamily, parsePrefix, type Family } from './address-bytes.js';
