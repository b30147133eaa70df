// strand-overlay for Docker. A standalone dockerd has no cluster: each host's
// engine runs `docker network create -d strand-overlay --ipam-driver
// strand-ipam --subnet S NAME` itself and gives the network its own
// NetworkID. Docker never tells a driver the network's name, so strand joins
// the engines' networks into one cluster-wide overlay network (one VNI, one
// global address pool) by `-o network=NAME` when given, else by the subnets.
// A host asking for a known cluster network with other settings gets an
// error naming the difference; the last host's `docker network rm` removes it.
import { StrandError, isStrandError } from '../../common/errors.js';
import type { Controller, SubnetRequest } from '../../core/controller.js';
import { shortId, validateName } from '../../core/ids.js';
import type { NetworkRecord } from '../../core/types.js';
import { requireHost } from '../../cluster/hosts.js';
import { overlaps, parseCidr } from '../../ipam/cidr.js';
import type { Pool } from '../../ipam/index.js';
import { Body } from './schema.js';
import type { Handlers } from './http.js';
import { DEFAULT_POOL_OPTION } from './ipam-driver.js';
import { GENERIC, networkDriverHandlers, subnetOf } from './network-driver.js';
import type { OverlayLinks, PoolAlias } from './overlay-links.js';

/** `-o network=NAME`: the cluster network's name, the same on every host. */
export const NETWORK_OPTION = 'network';
const CREATED_ON = 'strand.docker.created-on';

interface Wanted {
  subnets: (SubnetRequest & { subnet: string; localPool: Pool })[];
  ipv6: boolean;
  internal: boolean;
  options: Record<string, string>;
}

/** Without a name, the subnets name the network: overlay-10.90.0.0-24. */
function nameFromSubnets(subnets: string[]): string {
  return `overlay-${subnets.join('_').replace(/[/:]/g, '-')}`.slice(0, 128);
}

function describe(subnets: { subnet: string }[]): string {
  return subnets.map((s) => s.subnet).join(', ');
}

/** What this engine asks for, from CreateNetwork; the pools are the ones strand-ipam gave it on this host. */
async function wantedOf(ctl: Controller, b: Body): Promise<{ name: string; wanted: Wanted }> {
  const opts = b.obj('Options');
  const { [NETWORK_OPTION]: named, ...options } = opts.strings(GENERIC);
  if (named !== undefined) validateName(named, 'network (option network=)');
  const local = await ctl.ipamService().listPools('local');
  const subnets: Wanted['subnets'] = [];
  for (const [key, family] of [['IPv4Data', 4], ['IPv6Data', 6]] as const) {
    for (const d of b.list(key)) {
      const s = await subnetOf(ctl, d, family, 'overlay');
      const localPool = local.find((p) => p.subnet === s.subnet);
      if (!localPool) throw new StrandError('invalid', `the strand-overlay driver needs --ipam-driver strand-ipam: its addresses come from strand's cluster-wide pool, so no two hosts hand out the same one`);
      if (localPool.options[DEFAULT_POOL_OPTION]) throw new StrandError('invalid', `the strand-overlay driver needs an explicit IPv${family} --subnet, the same on every host that creates the network`);
      subnets.push({ subnet: s.subnet, ...(s.gateway ? { gateway: s.gateway } : {}), ...(localPool.ipRange ? { ipRange: localPool.ipRange } : {}), auxAddresses: s.auxAddresses, localPool });
    }
  }
  if (!subnets.some((s) => !s.subnet.includes(':'))) throw new StrandError('invalid', 'the strand-overlay driver needs an IPv4 --subnet');
  const wanted = { subnets, ipv6: opts.bool('com.docker.network.enable_ipv6'), internal: opts.bool('com.docker.network.internal'), options };
  return { name: named ?? nameFromSubnets(subnets.map((s) => s.subnet).sort()), wanted };
}

/** Refuses to join a cluster network whose settings differ, naming each difference. */
function checkSame(net: NetworkRecord, name: string, w: Wanted): void {
  if (net.scope !== 'global' || net.driver !== 'overlay') {
    throw new StrandError('exists', `network "${name}" exists and is a ${net.scope} ${net.driver} network, not a cluster overlay; choose another name with -o ${NETWORK_OPTION}=NAME`);
  }
  const where = net.labels[CREATED_ON] ? ` (created on host ${net.labels[CREATED_ON]})` : '';
  const theirs = [...net.subnets].sort((a, b) => a.subnet.localeCompare(b.subnet));
  const mine = [...w.subnets].sort((a, b) => a.subnet.localeCompare(b.subnet));
  const differences: string[] = [];
  if (theirs.map((s) => s.subnet).join() !== mine.map((s) => s.subnet).join()) differences.push(`subnet ${describe(theirs)}, not ${describe(mine)}: use the same --subnet on every host`);
  else {
    theirs.forEach((t, i) => {
      const m = mine[i]!;
      if (m.gateway && t.gateway !== m.gateway) differences.push(`gateway ${t.gateway ?? 'none'} on ${t.subnet}, not ${m.gateway}: use the same --gateway on every host`);
      if ((t.ipRange ?? '') !== (m.ipRange ?? '')) differences.push(`ip range ${t.ipRange ?? 'none'} on ${t.subnet}, not ${m.ipRange ?? 'none'}: use the same --ip-range on every host`);
    });
  }
  if (net.internal !== w.internal) differences.push(net.internal ? 'it is --internal and this one is not' : 'it is not --internal and this one is');
  if (net.ipv6 !== w.ipv6) differences.push(net.ipv6 ? 'it has IPv6 and this one does not' : 'it has no IPv6 and this one does');
  const opt = (o: Record<string, string>) => JSON.stringify(Object.entries(o).sort());
  if (opt(net.options) !== opt(w.options)) differences.push(`options ${opt(net.options)}, not ${opt(w.options)}: use the same -o options on every host`);
  if (differences.length) throw new StrandError('invalid', `strand-overlay network "${name}" already exists in the cluster${where} with ${differences.join('; ')}`);
}

/** A cluster network of another name whose subnet overlaps: a typo or a clash, never something to join silently. */
async function checkNoOverlap(ctl: Controller, name: string, w: Wanted): Promise<void> {
  for (const other of await ctl.listNetworks()) {
    if (other.name === name) continue;
    for (const s of w.subnets) {
      const clash = other.subnets.find((o) => overlaps(parseCidr(s.subnet), parseCidr(o.subnet)));
      if (!clash) continue;
      const byName = other.name !== nameFromSubnets(other.subnets.map((o) => o.subnet).sort());
      const hint = other.driver === 'overlay' && other.scope === 'global' ? `to join it, create the network with --subnet ${describe(other.subnets)}${byName ? ` -o ${NETWORK_OPTION}=${other.name}` : ''}` : 'choose another subnet';
      throw new StrandError('exists', `subnet ${s.subnet} overlaps subnet ${clash.subnet} of ${other.scope === 'global' ? 'cluster ' : ''}network "${other.name}"; ${hint}`);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cluster network, joined or made; `created` when this host made it (and must remove it if linking fails). */
async function clusterNetwork(ctl: Controller, engineId: string, name: string, w: Wanted): Promise<{ net: NetworkRecord; created: boolean }> {
  // Two hosts creating it at once: one wins the pool and the name, the other joins once the record is there.
  for (let attempt = 0; ; attempt++) {
    const found = await ctl.lookupNetwork(name);
    if (found) {
      checkSame(found, name, w);
      // Joining works only where an agent runs; better said now than at the first docker run.
      await requireHost(ctl.store, ctl.hostId);
      return { net: found, created: false };
    }
    await checkNoOverlap(ctl, name, w);
    try {
      const net = await ctl.createNetwork({
        id: engineId,
        name,
        driver: 'overlay',
        subnets: w.subnets.map(({ localPool: _, ...s }) => s),
        ipv6: w.ipv6,
        internal: w.internal,
        options: w.options,
        labels: { 'strand.engine': 'docker', [CREATED_ON]: ctl.hostId },
      });
      return { net, created: true };
    } catch (err) {
      if (!isStrandError(err, 'exists') || attempt >= 100) throw err;
      await sleep(100);
    }
  }
}

export function overlayDriverHandlers(ctl: Controller, links: OverlayLinks): Handlers {
  const common = networkDriverHandlers(ctl, 'overlay');
  const createEndpoint = common['NetworkDriver.CreateEndpoint']!;
  return {
    ...common,

    // Scope global needs swarm; connectivity across hosts is what global means here.
    'NetworkDriver.GetCapabilities': async () => ({ Scope: 'local', ConnectivityScope: 'global' }),

    'NetworkDriver.CreateNetwork': async (body) => {
      const b = Body.of('CreateNetwork', body);
      const engineId = b.id('NetworkID');
      if (await links.get(engineId)) return {};
      const { name, wanted } = await wantedOf(ctl, b);
      const { net, created } = await clusterNetwork(ctl, engineId, name, wanted);
      const pools: Record<string, PoolAlias> = {};
      for (const s of wanted.subnets) {
        const global = net.subnets.find((g) => g.subnet === s.subnet)!;
        pools[s.localPool.id] = { globalPoolId: global.poolId, local: [...(s.gateway ? [s.gateway] : []), ...Object.values(s.auxAddresses ?? {})] };
      }
      try {
        await links.add({ engineNetworkId: engineId, clusterId: net.id, pools });
      } catch (err) {
        if (created) await ctl.deleteNetwork(net.id).catch(() => undefined);
        throw err;
      }
      return {};
    },

    'NetworkDriver.DeleteNetwork': async (body) => {
      const link = await links.get(Body.of('DeleteNetwork', body).id('NetworkID'));
      if (!link) return {};
      const net = await ctl.networkById(link.clusterId);
      // dockerd deletes its endpoints first; any left are ones it dropped while strand was down.
      // Only the engine's own (no sandbox, no maker's labels): CNI pods on the same cluster network are their runtime's.
      if (net) for (const ep of await ctl.endpointsOf(net)) if (!ep.sandboxId && !ep.labels) await ctl.deleteDetachedEndpoint(ep.id);
      const others = await links.remove(link);
      if (!net) return {};
      if (!others.length) {
        try {
          await ctl.deleteNetwork(net.id);
          return {};
        } catch (err) {
          // strand's own sandboxes still use it somewhere: it stays a strand overlay network.
          if (!isStrandError(err, 'in-use')) throw err;
        }
      }
      // The network lives on for the other hosts; this host's bridge and vxlan device go if nothing here uses them.
      if (!(await ctl.endpointsOf(net)).length) await ctl.removeLocalNetwork(net);
      return {};
    },

    'NetworkDriver.CreateEndpoint': async (body) => {
      const b = Body.of('CreateEndpoint', body);
      const engineId = b.id('NetworkID');
      const link = await links.get(engineId);
      if (!link) throw new StrandError('not-found', `network ${shortId(engineId)} is unknown to strand-overlay (its store lost it?); remove the network and create it again`);
      return createEndpoint({ ...b.value, NetworkID: link.clusterId });
    },
  };
}
