// Assembles a Controller with every driver, for the front doors (the strand
// command, the daemon, the plugins): one place that knows what exists.
import { Netlink } from '../netlink/index.js';
import { Firewall } from '../firewall/index.js';
import { openStore } from '../store/index.js';
import { BridgeDriver } from '../drivers/bridge/index.js';
import { HostDriver } from '../drivers/host/index.js';
import { NoneDriver } from '../drivers/none/index.js';
import { MacvlanDriver } from '../drivers/macvlan/index.js';
import { Controller } from './controller.js';

export interface RuntimeOptions {
  /** Store URL; default $STRAND_STORE, then local:///var/lib/strand. */
  store?: string;
  hostId?: string;
  runDir?: string;
}

export async function openController(options: RuntimeOptions = {}): Promise<Controller> {
  const store = await openStore(options.store);
  try {
    const nl = Netlink.open();
    const controller = new Controller({
      store,
      drivers: [new BridgeDriver(nl, () => Firewall.open()), new MacvlanDriver(nl), new HostDriver(), new NoneDriver()],
      ...(options.hostId ? { hostId: options.hostId } : {}),
      ...(options.runDir ?? process.env.STRAND_RUN_DIR ? { runDir: (options.runDir ?? process.env.STRAND_RUN_DIR)! } : {}),
    });
    controller.onClose(() => nl.close());
    return controller;
  } catch (err) {
    await store.close();
    throw err;
  }
}
