// Assembles a Controller with every driver, for the front doors (the strand
// command, the daemon, the plugins): one place that knows what exists.
import { Netlink } from '../netlink/index.js';
import { LinkReaper } from '../netlink/link-reaper.js';
import { Firewall } from '../firewall/index.js';
import { openStore } from '../store/index.js';
import { BridgeDriver } from '../drivers/bridge/index.js';
import { HostDriver } from '../drivers/host/index.js';
import { NoneDriver } from '../drivers/none/index.js';
import { MacvlanDriver } from '../drivers/macvlan/index.js';
import { OverlayDriver } from '../drivers/overlay/index.js';
import { Controller } from '../core/controller.js';

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
    // The overlay needs the controller's host id, which the controller settles: hence the getter.
    let controller: Controller | undefined;
    const overlay = new OverlayDriver(nl, () => Firewall.open(), () => ({ store, hostId: controller!.hostId }));
    controller = new Controller({
      store,
      drivers: [new BridgeDriver(nl, () => Firewall.open(), reaper), new MacvlanDriver(nl), overlay, new HostDriver(), new NoneDriver()],
      ...(hostId ? { hostId } : {}),
      ...(options.runDir ?? process.env.STRAND_RUN_DIR ? { runDir: (options.runDir ?? process.env.STRAND_RUN_DIR)! } : {}),
    });
    controller.onClose(() => nl.close());
    if (reaper) controller.onClose(() => reaper.close());
    return controller;
  } catch (err) {
    await store.close();
    throw err;
  }
}
