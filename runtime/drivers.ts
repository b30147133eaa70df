// Which network drivers a strand host has, as libnetwork's drivers_linux.go
// lists them: the one file that knows them all. Core reaches each through its
// Driver interface; front doors reach them only through core.
import type { Netlink } from '../netlink/index.js';
import type { LinkReaper } from '../netlink/link-reaper.js';
import { Firewall } from '../firewall/index.js';
import type { Store } from '../store/types.js';
import type { ClusterDataPlane, Driver } from '../core/types.js';
import { BridgeDriver } from '../drivers/bridge/index.js';
import { HostDriver } from '../drivers/host/index.js';
import { NoneDriver } from '../drivers/none/index.js';
import { MacvlanDriver } from '../drivers/macvlan/index.js';
import { OverlayDriver } from '../drivers/overlay/index.js';
import { overlayDataPlane } from '../drivers/overlay/plane.js';

export interface DriverDeps {
  nl: Netlink;
  /** Deletes veths on a worker thread, after the answer (a long-lived daemon). */
  reaper?: LinkReaper;
  /** The store and this host's id, read when a cluster driver first needs them. */
  cluster: () => { store: Store; hostId: string };
}

export function hostDrivers({ nl, reaper, cluster }: DriverDeps): Driver[] {
  const firewall = (): Promise<Firewall> => Firewall.open();
  return [new BridgeDriver(nl, firewall, reaper), new MacvlanDriver(nl), new OverlayDriver(nl, firewall, cluster), new HostDriver(), new NoneDriver()];
}

/** The cluster networks' devices on this host, for the peer agent and `daemon dump` (which may run without a store). */
export function clusterDataPlane(nl: Netlink): ClusterDataPlane {
  return overlayDataPlane(nl);
}
