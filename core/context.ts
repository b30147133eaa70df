// What the code of each CNM object shares: the records, IPAM, the drivers and
// this host's netlink. The Controller makes it once and hands it to its parts;
// front doors never see it.
import { StrandError } from '../common/errors.js';
import type { Netlink } from '../netlink/index.js';
import type { Ipam } from '../ipam/index.js';
import type { Records } from './records/index.js';
import type { Driver } from './types.js';

export class CoreContext {
  constructor(
    readonly records: Records,
    readonly ipam: Ipam,
    /** Netlink in the host's namespace, where bridges and host ends live. */
    readonly host: Netlink,
    readonly hostId: string,
    /** Where sandbox files live. */
    readonly runDir: string,
    private readonly drivers: ReadonlyMap<string, Driver>,
  ) {}

  driver(name: string): Driver {
    const d = this.drivers.get(name);
    // Docker has an ipvlan driver; this kernel has no ipvlan link type, so say that rather than "unknown".
    if (!d && name === 'ipvlan') throw new StrandError('invalid', 'the ipvlan driver is not available: this kernel has no ipvlan link type; use the macvlan driver (--driver macvlan --opt parent=INTERFACE), which also puts containers on the underlay');
    if (!d) throw new StrandError('invalid', `unknown network driver "${name}": use one of ${[...this.drivers.keys()].join(', ')}`);
    return d;
  }

  hasDriver(name: string): boolean {
    return this.drivers.has(name);
  }

  allDrivers(): Driver[] {
    return [...this.drivers.values()];
  }
}
