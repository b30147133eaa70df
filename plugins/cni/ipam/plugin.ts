// strand-ipam: a CNI IPAM plugin (host-local's config, strand's IPAM
// service). The ipam* functions are also what strand's own plugins call in
// process instead of spawning it.
//
// Decisions (see README.md in this folder):
// - ADD for a (containerId, ifName) that already holds an address on the
//   network fails like host-local ("duplicate allocation is not allowed").
// - DEL frees what (containerId, ifName) holds in this network's pools and
//   reads only the store settings, so it works with a config whose ranges no
//   longer parse; repeating it is a no-op.
// - GC without a valid-attachments list frees nothing: libcni has already
//   DELed every cached attachment, and without the list live ones cannot be
//   told apart. An empty list frees every address of the network.
import { StrandError, isStrandError } from '../../../common/errors.js';
import { formatIp, parseIp } from '../../../ipam/cidr.js';
import type { Pool } from '../../../ipam/index.js';
import { describeOwner } from '../../../ipam/validate.js';
import { checkCniArgKeys } from '../protocol/args.js';
import { type IpamConf, type RangeConf, describeRange, parseIpamConfig, parseIpamTarget, placeRequests } from './config.js';
import { type IpamSession, type SessionOptions, NETWORK_OPTION, RANGE_OPTION, ensurePools, heldBy, networkPools, openSession, ownerOf } from './pools.js';
import { CniError, CNI_CODES, type CniIp, type CniRequest, type CniResult, type PluginHandlers } from '../protocol/types.js';

export type IpamCallOptions = SessionOptions;

async function withSession<T>(conf: { store: IpamConf['store'] }, options: IpamCallOptions, fn: (s: IpamSession) => Promise<T>): Promise<T> {
  const s = await openSession(conf.store, options);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** This network's addresses held by the request's attachment. */
async function heldOnNetwork(s: IpamSession, network: string, req: CniRequest, pools: readonly Pool[]) {
  const mine = new Set(networkPools(pools, network).map((p) => p.id));
  return (await heldBy(s, ownerOf(network, req.containerId, req.ifName))).filter((h) => mine.has(h.poolId));
}

/** Allocates one address from each range set; on any failure frees what it took. */
export async function ipamAdd(req: CniRequest, options: IpamCallOptions = {}): Promise<CniResult> {
  checkCniArgKeys(req.args, ['IP']);
  const conf = parseIpamConfig(req, { withRequests: true });
  const placed = placeRequests(conf);
  const owner = ownerOf(conf.network, req.containerId, req.ifName);
  return withSession(conf, options, async (s) => {
    const pools = await ensurePools(s, conf.network, conf.sets.flat());
    const held = await heldOnNetwork(s, conf.network, req, [...pools.values()]);
    if (held.length) {
      throw new StrandError('exists', `duplicate allocation is not allowed: ${describeOwner(owner)} already holds ${held.map((h) => h.address).join(', ')} on network ${JSON.stringify(conf.network)}; DEL it first`);
    }
    const taken: { poolId: string; address: string }[] = [];
    const ips: CniIp[] = [];
    try {
      for (let i = 0; i < conf.sets.length; i++) {
        const set = conf.sets[i]!;
        const want = placed.get(i);
        const attempt = async (range: RangeConf, address?: string) => {
          const r = await s.ipam.requestAddress(pools.get(range.key)!.id, { owner, strictRange: true, ...(address ? { address } : {}) });
          taken.push({ poolId: r.poolId, address: r.address });
          ips.push({ address: r.cidr, gateway: formatIp({ family: range.subnet.family, value: range.gateway }) });
        };
        if (want) {
          await attempt(want.range, formatIp(want.ip));
          continue;
        }
        let done = false;
        for (const range of set) {
          try {
            await attempt(range);
            done = true;
            break;
          } catch (err) {
            if (!isStrandError(err, 'exhausted')) throw err;
          }
        }
        if (!done) throw new StrandError('exhausted', `no IP addresses available in range set: ${set.map(describeRange).join(', ')} (network ${JSON.stringify(conf.network)})`);
      }
    } catch (err) {
      for (const t of taken.reverse()) {
        try {
          await s.ipam.releaseAddress(t.poolId, t.address);
        } catch {
          // keep undoing; GC frees what is left
        }
      }
      throw err;
    }
    const result: CniResult = { cniVersion: req.config.cniVersion, ips };
    if (conf.routes.length) result.routes = conf.routes.map((r) => ({ ...r }));
    if (conf.dns) result.dns = conf.dns;
    return result;
  });
}

/** Frees every address (containerId, ifName) holds on this network; already gone is fine. */
export async function ipamDel(req: CniRequest, options: IpamCallOptions = {}): Promise<void> {
  const target = parseIpamTarget(req);
  await withSession(target, options, async (s) => {
    const pools = await s.ipam.listPools(s.space);
    for (const h of await heldOnNetwork(s, target.network, req, pools)) {
      try {
        await s.ipam.releaseAddress(h.poolId, h.address);
      } catch (err) {
        if (!isStrandError(err, 'not-found')) throw err;
      }
    }
  });
}

/** Passes when the attachment holds an address in every range set, and holds every prevResult address that lies in this network's ranges. */
export async function ipamCheck(req: CniRequest, options: IpamCallOptions = {}): Promise<void> {
  const conf = parseIpamConfig(req);
  const owner = ownerOf(conf.network, req.containerId, req.ifName);
  await withSession(conf, options, async (s) => {
    const pools = networkPools(await s.ipam.listPools(s.space), conf.network);
    const held = await heldOnNetwork(s, conf.network, req, pools);
    const byKey = new Map(pools.map((p) => [p.options[RANGE_OPTION], p.id]));
    conf.sets.forEach((set, i) => {
      const ids = new Set(set.map((r) => byKey.get(r.key)));
      if (!held.some((h) => ids.has(h.poolId))) {
        throw new StrandError('not-found', `strand-ipam: ${describeOwner(owner)} holds no address in range set ${i} (${set.map(describeRange).join(', ')}) of network ${JSON.stringify(conf.network)}`);
      }
    });
    const addrs = new Set(held.map((h) => h.address));
    for (const ip of req.config.prevResult?.ips ?? []) {
      const addr = ip.address.slice(0, ip.address.indexOf('/'));
      let ip4or6;
      try {
        ip4or6 = parseIp(addr);
      } catch {
        continue; // parseResult checked it; a form parseIp refuses cannot be ours
      }
      const inNetwork = conf.sets.flat().some((r) => r.subnet.family === ip4or6.family && ip4or6.value >= r.first && ip4or6.value <= r.last);
      const canonical = formatIp(ip4or6);
      if (inNetwork && !addrs.has(canonical)) {
        throw new StrandError('not-found', `strand-ipam: prevResult address ${ip.address} is not allocated to ${describeOwner(owner)} on network ${JSON.stringify(conf.network)}`);
      }
    }
  });
}

/** Frees this host's addresses of the network whose attachment is not in validAttachments. */
export async function ipamGc(req: CniRequest, options: IpamCallOptions = {}): Promise<void> {
  const target = parseIpamTarget(req);
  if (req.validAttachments === undefined) return;
  const keep = new Set(req.validAttachments.map((a) => `${a.containerId}\u0000${a.ifName}`));
  await withSession(target, options, async (s) => {
    await s.ipam.gc((owner) => {
      if (owner.attachment?.network !== target.network || owner.containerId === undefined) return true;
      return keep.has(`${owner.containerId}\u0000${owner.ifName ?? ''}`);
    });
  });
}

/** Code 50 when the store cannot be reached or some range set has no free address left. */
export async function ipamStatus(req: CniRequest, options: IpamCallOptions = {}): Promise<void> {
  const conf = parseIpamConfig(req);
  let s: IpamSession;
  let pools: Pool[];
  try {
    s = await openSession(conf.store, options);
  } catch (err) {
    if (isStrandError(err, 'invalid')) throw err;
    throw new CniError(CNI_CODES.notReady, `strand-ipam: store ${conf.store.url} is unreachable: ${(err as Error).message}`);
  }
  try {
    try {
      pools = networkPools(await s.ipam.listPools(s.space), conf.network);
    } catch (err) {
      throw new CniError(CNI_CODES.notReady, `strand-ipam: store ${s.store.url} is unreachable: ${(err as Error).message}`);
    }
    for (const set of conf.sets) {
      let free = false;
      for (const range of set) {
        const pool = pools.find((p) => p.options[RANGE_OPTION] === range.key && p.options[NETWORK_OPTION] === conf.network);
        if (!pool) {
          free = true; // created on the first ADD, empty
          break;
        }
        const u = await s.ipam.usage(pool.id);
        if (BigInt(u.inRange) < u.capacity) {
          free = true;
          break;
        }
      }
      if (!free) throw new CniError(CNI_CODES.notReady, `strand-ipam: no IP addresses available in range set: ${set.map(describeRange).join(', ')} (network ${JSON.stringify(conf.network)})`);
    }
  } finally {
    await s.close();
  }
}

export const ipamHandlers: PluginHandlers = {
  add: (req) => ipamAdd(req),
  del: (req) => ipamDel(req),
  check: (req) => ipamCheck(req),
  gc: (req) => ipamGc(req),
  status: (req) => ipamStatus(req),
};
