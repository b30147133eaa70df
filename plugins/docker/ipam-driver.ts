// Docker's IpamDriver calls backed by strand's Ipam, so Docker networks and
// strand's own draw from the same pools and never overlap. Pool ids are
// strand's; strand persists everything itself (no request replay).
import { StrandError, isStrandError, unlessNotFound } from '../../common/errors.js';
import type { AddressSpace, Ipam, Owner } from '../../ipam/index.js';
import { Body } from './schema.js';
import type { Handlers } from './http.js';
import type { OverlayLinks } from './overlay-links.js';

export const LOCAL_SPACE = 'strand-local';
export const GLOBAL_SPACE = 'strand-global';
const GATEWAY_TYPE = 'com.docker.network.gateway';
/** Marks a pool strand-ipam picked itself (no --subnet), which hosts cannot agree on for a cluster network. */
export const DEFAULT_POOL_OPTION = 'strand.docker.default-pool';

// Docker's requests do not say which endpoint an address is for. Its
// owners carry no endpointId (core's GC judges only those) and no attachment
// network (CNI GC judges only its own networks): the engine releases them, or
// ReleasePool does. Aux and --ip requests look alike (an address, no options).
const DOCKER_OWNER: Owner = { containerId: 'docker', attachment: { engine: 'docker' } };

/**
 * Pool option prefixes strand keeps for its own bookkeeping: strand-ipam (CNI)
 * finds its pools again by cni.network and cni.range, and strand marks pools
 * with strand.* keys. A Docker pool carrying them would pass for a CNI
 * network's pool (and be released under it by ReleasePool), so they are refused.
 */
const RESERVED_OPTION_PREFIXES = ['cni.', 'strand.'];

/** Docker's --ipam-opt pairs, refused when a key is one strand reserves. */
function poolOptions(options: Record<string, string>): Record<string, string> {
  for (const key of Object.keys(options)) {
    const prefix = RESERVED_OPTION_PREFIXES.find((p) => key.startsWith(p));
    if (prefix) {
      throw new StrandError('invalid', `IPAM option "${key}" is reserved: strand keeps ${RESERVED_OPTION_PREFIXES.map((p) => `"${p}*"`).join(' and ')} pool options for its own (CNI) pools, so a Docker pool cannot name or join one; remove --ipam-opt ${key}`);
    }
  }
  return options;
}

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

/**
 * strand-ipam's handlers. With `overlays`, a local pool that an engine's
 * strand-overlay network stands on hands out its endpoints' addresses from
 * the cluster's global pool, so no two hosts give out the same one.
 */
export function ipamDriverHandlers(ipam: Ipam, overlays?: OverlayLinks): Handlers {
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
        options: { ...poolOptions(b.strings('Options')), ...(subnet ? {} : { [DEFAULT_POOL_OPTION]: 'true' }) },
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
      // The cluster pool is shared: only what this host's engine left there goes (the pool goes with the cluster network).
      const alias = await overlays?.poolAlias(id);
      if (alias) {
        const mine = (await unlessNotFound(ipam.listAllocations(alias.globalPoolId))) ?? [];
        for (const a of mine) if (a.host === ipam.hostId && a.owner.containerId === DOCKER_OWNER.containerId) await gone(ipam.releaseAddress(alias.globalPoolId, a.address));
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
      const alias = gateway ? undefined : await overlays?.poolAlias(poolId);
      const got = await ipam.requestAddress(alias?.globalPoolId ?? poolId, { ...(gateway ? { gateway: true } : { owner: DOCKER_OWNER }), ...(address ? { address } : {}) });
      return { Address: got.cidr, Data: {} };
    },

    'IpamDriver.ReleaseAddress': async (body) => {
      const b = Body.of('ReleaseAddress', body);
      const poolId = b.str('PoolID', { required: true });
      const ip = b.str('Address', { required: true }).split('/')[0]!;
      const alias = await overlays?.poolAlias(poolId);
      await gone(ipam.releaseAddress(alias && !alias.local.includes(ip) ? alias.globalPoolId : poolId, ip));
      return {};
    },
  };
}
