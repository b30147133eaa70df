// Docker's IpamDriver calls backed by strand's Ipam, so Docker networks and
// strand's own draw from the same pools and never overlap. Pool ids are
// strand's; strand persists everything itself (no request replay).
import { StrandError, isStrandError } from '../../common/errors.js';
import type { AddressSpace, Ipam, Owner } from '../../ipam/index.js';
import { Body } from './schema.js';
import type { Handlers } from './http.js';

export const LOCAL_SPACE = 'strand-local';
export const GLOBAL_SPACE = 'strand-global';
const GATEWAY_TYPE = 'com.docker.network.gateway';

// Docker's requests do not say which endpoint an address is for. Its
// owners carry no endpointId (core's GC judges only those) and no attachment
// network (CNI GC judges only its own networks): the engine releases them, or
// ReleasePool does. Aux and --ip requests look alike (an address, no options).
const DOCKER_OWNER: Owner = { containerId: 'docker', attachment: { engine: 'docker' } };

function space(name: string): AddressSpace {
  if (name === LOCAL_SPACE || name === '') return 'local';
  if (name === GLOBAL_SPACE) return 'global';
  throw new StrandError('invalid', `unknown address space "${name}": strand-ipam has ${LOCAL_SPACE} and ${GLOBAL_SPACE}`);
}

/** Succeeds when the object is already gone: Docker's deletes must be idempotent. */
async function gone(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isStrandError(err, 'not-found')) throw err;
  }
}

export function ipamDriverHandlers(ipam: Ipam): Handlers {
  return {
    'Plugin.Activate': async () => ({ Implements: ['IpamDriver'] }),

    'IpamDriver.GetCapabilities': async () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }),

    'IpamDriver.GetDefaultAddressSpaces': async () => ({ LocalDefaultAddressSpace: LOCAL_SPACE, GlobalDefaultAddressSpace: GLOBAL_SPACE }),

    'IpamDriver.RequestPool': async (body) => {
      const b = Body.of('RequestPool', body);
      const subnet = b.str('Pool');
      const ipRange = b.str('SubPool');
      const v6 = b.bool('V6');
      if (v6 && !subnet) throw new StrandError('invalid', 'strand-ipam has no default IPv6 pool: give an IPv6 --subnet');
      if (subnet && subnet.includes(':') !== v6) throw new StrandError('invalid', `subnet ${subnet} is not IPv${v6 ? 6 : 4}`);
      if (ipRange && !subnet) throw new StrandError('invalid', `--ip-range ${ipRange} needs a --subnet`);
      // An empty Pool asked again (dockerd rejected the last one) gets the next free default: the rejected one is still held.
      const pool = await ipam.requestPool({
        space: space(b.str('AddressSpace')),
        ...(subnet ? { subnet } : {}),
        ...(ipRange ? { ipRange } : {}),
        options: b.strings('Options'),
      });
      return { PoolID: pool.id, Pool: pool.subnet, Data: {} };
    },

    'IpamDriver.ReleasePool': async (body) => {
      const id = Body.of('ReleasePool', body).str('PoolID', { required: true });
      // dockerd releases its addresses first; what is left leaked while strand was down.
      let leaked;
      try {
        leaked = await ipam.listAllocations(id);
      } catch (err) {
        if (isStrandError(err, 'not-found')) return {};
        throw err;
      }
      for (const a of leaked) await gone(ipam.releaseAddress(id, a.address));
      await gone(ipam.releasePool(id));
      return {};
    },

    'IpamDriver.RequestAddress': async (body) => {
      const b = Body.of('RequestAddress', body);
      const poolId = b.str('PoolID', { required: true });
      const address = b.str('Address');
      const opts = b.strings('Options');
      const gateway = opts.RequestAddressType === GATEWAY_TYPE;
      const got = await ipam.requestAddress(poolId, { ...(gateway ? { gateway: true } : { owner: DOCKER_OWNER }), ...(address ? { address } : {}) });
      return { Address: got.cidr, Data: {} };
    },

    'IpamDriver.ReleaseAddress': async (body) => {
      const b = Body.of('ReleaseAddress', body);
      const address = b.str('Address', { required: true });
      await gone(ipam.releaseAddress(b.str('PoolID', { required: true }), address.split('/')[0]!));
      return {};
    },
  };
}
