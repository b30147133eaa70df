// strand-ipam's view of the IPAM service: one strand pool per (network,
// range), found or created on first use, and the addresses an attachment
// holds in a network's pools. Pools carry the network and range in their
// options, which is how they are found again.
import { StrandError, isStrandError } from '../../../common/errors.js';
import { formatCidr, formatIp, overlaps, parseCidr } from '../../../ipam/cidr.js';
import { Ipam, type Owner, type Pool } from '../../../ipam/index.js';
import { Keys, spacePrefix } from '../../../ipam/keys.js';
import { openStore, type Store } from '../../../store/index.js';
import type { RangeConf, StoreChoice } from './config.js';

export const NETWORK_OPTION = 'cni.network';
export const RANGE_OPTION = 'cni.range';

export interface IpamSession {
  ipam: Ipam;
  store: Store;
  space: 'local' | 'global';
  close(): Promise<void>;
}

export interface SessionOptions {
  /** Use this open store (the caller closes it) instead of opening the configured one. */
  store?: Store;
  hostId?: string;
}

export async function openSession(choice: StoreChoice, options: SessionOptions = {}): Promise<IpamSession> {
  const store = options.store ?? (await openStore(choice.url));
  const ipam = new Ipam({ store, ...(options.hostId ? { hostId: options.hostId } : {}) });
  return {
    ipam,
    store,
    space: choice.space,
    close: async () => {
      if (!options.store) await store.close();
    },
  };
}

export function ownerOf(network: string, containerId: string, ifName: string): Owner {
  return { containerId, ifName, attachment: { network } };
}

export function networkPools(pools: readonly Pool[], network: string): Pool[] {
  return pools.filter((p) => p.options[NETWORK_OPTION] === network);
}

/**
 * The network's pool for each range, created when missing. Concurrent
 * creators race on the pool registry's compare-and-swap: the loser sees
 * 'exists' and finds the winner's pool. A pool left from an older version of
 * the config that overlaps a range is removed when it holds no address;
 * otherwise the config change is refused.
 */
export async function ensurePools(s: IpamSession, network: string, ranges: readonly RangeConf[]): Promise<Map<string, Pool>> {
  const out = new Map<string, Pool>();
  let pools = await s.ipam.listPools(s.space);
  for (const range of ranges) {
    for (let attempt = 0; ; attempt++) {
      const found = pools.find((p) => p.options[NETWORK_OPTION] === network && p.options[RANGE_OPTION] === range.key);
      if (found) {
        out.set(range.key, found);
        break;
      }
      const fam = range.subnet.family;
      try {
        const pool = await s.ipam.requestPool({
          space: s.space,
          subnet: formatCidr(range.subnet),
          rangeStart: formatIp({ family: fam, value: range.first }),
          rangeEnd: formatIp({ family: fam, value: range.last }),
          gateway: formatIp({ family: fam, value: range.gateway }),
          options: { [NETWORK_OPTION]: network, [RANGE_OPTION]: range.key },
        });
        out.set(range.key, pool);
        pools = [...pools, pool];
        break;
      } catch (err) {
        if (!isStrandError(err, 'exists') || attempt >= 5) throw err;
        pools = await s.ipam.listPools(s.space);
        if (pools.some((p) => p.options[NETWORK_OPTION] === network && p.options[RANGE_OPTION] === range.key)) continue;
        await retireStale(s, network, range, pools, err);
        pools = await s.ipam.listPools(s.space);
      }
    }
  }
  return out;
}

// The pool blocking `range`: an empty pool of the same network (from an older
// config) is released; anything else is a conflict the user must resolve.
async function retireStale(s: IpamSession, network: string, range: RangeConf, pools: readonly Pool[], cause: StrandError): Promise<void> {
  const subnet = formatCidr(range.subnet);
  const blocking = pools.find((p) => overlaps(parseCidr(p.subnet), range.subnet));
  if (!blocking) throw cause;
  const owner = blocking.options[NETWORK_OPTION];
  if (owner !== network) {
    const who = owner !== undefined ? `of CNI network ${JSON.stringify(owner)}` : 'made by strand (not by a CNI network)';
    throw new StrandError('invalid', `${range.where} subnet ${subnet} overlaps pool ${blocking.id} (${blocking.subnet}) ${who} in store ${s.store.url}; use another subnet or another store/dataDir`);
  }
  const usage = await s.ipam.usage(blocking.id);
  if (usage.allocated > 0) {
    throw new StrandError(
      'invalid',
      `network ${JSON.stringify(network)} changed ${range.where} to ${range.key}, but its old pool ${blocking.id} (${blocking.options[RANGE_OPTION] ?? blocking.subnet}) still holds ${usage.allocated} address(es); DEL those containers first`,
    );
  }
  try {
    await s.ipam.releasePool(blocking.id);
  } catch (err) {
    // Someone else released it or allocated in it meanwhile: look again.
    if (!isStrandError(err, 'not-found') && !isStrandError(err, 'in-use')) throw err;
  }
}

export interface Held {
  poolId: string;
  address: string;
}

/** What (containerId, ifName) holds in this session's space, from IPAM's owner index (one list). */
export async function heldBy(s: IpamSession, owner: Owner): Promise<Held[]> {
  const keys = new Keys(spacePrefix(s.space, s.ipam.hostId));
  const prefix = keys.owners({ containerId: owner.containerId!, ifName: owner.ifName ?? '' });
  return (await s.store.list(prefix)).map((kv) => {
    const [poolId] = kv.key.slice(prefix.length).split('/') as [string];
    return { poolId, address: kv.value };
  });
}
