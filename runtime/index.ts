// Opens a Controller with every driver of this host, for the front doors (the
// strand command, the daemon, the plugins). The composition root: it sits
// above the drivers so that core never imports one.
import { Netlink } from '../netlink/index.js';
import { LinkReaper } from '../netlink/link-reaper.js';
import { openStore } from '../store/index.js';
import { Controller } from '../core/controller.js';
import { hostDrivers } from './drivers.js';

export { clusterDataPlane } from './drivers.js';

export interface RuntimeOptions {
  /** Store URL; default $STRAND_STORE, then local:///var/lib/strand. */
  store?: string;
  /** This host's id in a shared store; default $STRAND_HOST_ID, then the host name. */
  hostId?: string;
  runDir?: string;
  /** A long-lived process (the daemon): veths are removed on a worker thread, after the answer. */
  backgroundLinkDeletes?: boolean;
}

export async function openController(options: RuntimeOptions = {}): Promise<Controller> {
  const store = await openStore(options.store);
  try {
    const nl = Netlink.open();
    const reaper = options.backgroundLinkDeletes ? new LinkReaper() : undefined;
    const hostId = options.hostId ?? process.env.STRAND_HOST_ID;
    const runDir = options.runDir ?? process.env.STRAND_RUN_DIR;
    // Cluster drivers need the controller's host id, which the controller settles: hence the getter.
    const controller: Controller = new Controller({
      store,
      drivers: hostDrivers({ nl, ...(reaper ? { reaper } : {}), cluster: () => ({ store, hostId: controller.hostId }) }),
      ...(hostId ? { hostId } : {}),
      ...(runDir ? { runDir } : {}),
    });
    controller.onClose(() => nl.close());
    if (reaper) controller.onClose(() => reaper.close());
    return controller;
  } catch (err) {
    await store.close();
    throw err;
  }
}
