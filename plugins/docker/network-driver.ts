// Docker's NetworkDriver calls mapped onto core: a Docker network is a strand
// network record (its id is Docker's NetworkID, its subnets the pools the
// engine's IPAM driver chose); a Docker endpoint is a detached endpoint whose
// interface strand makes in the host namespace and dockerd moves into the
// container at Join.
import { isIP } from 'node:net';
import { StrandError } from '../../common/errors.js';
import type { Controller } from '../../core/controller.js';
import type { SubnetInfo } from '../../core/types.js';
import { Body } from './schema.js';
import { exposedPorts, portRequests } from './ports.js';
import type { Handlers } from './http.js';

export const GENERIC = 'com.docker.network.generic';
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Docker's option names that a strand driver spells differently. */
const RENAMES: Record<string, Record<string, string>> = {
  macvlan: { 'com.docker.network.driver.mtu': 'mtu' },
};

/** Docker's generic options as the strand driver's, renamed where it spells them differently (own keys only: "constructor" stays "constructor"). */
export function driverOptions(driver: string, generic: Record<string, string>): Record<string, string> {
  const renames = Object.hasOwn(RENAMES, driver) ? RENAMES[driver]! : {};
  return Object.fromEntries(Object.entries(generic).map(([k, v]) => [Object.hasOwn(renames, k) ? renames[k]! : k, v]));
}

function plainIp(cidr: string, what: string): string {
  const ip = cidr.split('/')[0]!;
  if (!isIP(ip)) throw new StrandError('invalid', `invalid ${what} "${cidr}"`);
  return ip;
}

/** One IPv4Data/IPv6Data entry: the pool the engine's IPAM gave, with its gateway and aux addresses (CIDRs there, plain here). */
export async function subnetOf(ctl: Controller, d: Body, family: 4 | 6, driver: string): Promise<SubnetInfo> {
  const pool = d.str('Pool', { required: true });
  if (d.str('AddressSpace') === 'null' || /^(0\.0\.0\.0|::)\/0$/.test(pool)) {
    throw new StrandError('invalid', `the strand-${driver} driver needs addresses: create the network with --ipam-driver strand-ipam (or the default IPAM) and a --subnet, not --ipam-driver null`);
  }
  const gateway = d.str('Gateway');
  const aux = d.strings('AuxAddresses');
  // Docker's CreateNetwork carries no PoolID; strand-ipam's pool is found by its subnet.
  const own = (await ctl.ipamService().listPools()).find((p) => p.subnet === pool);
  return {
    subnet: pool,
    ...(gateway ? { gateway: plainIp(gateway, 'gateway') } : {}),
    auxAddresses: Object.fromEntries(Object.entries(aux).map(([k, v]) => [k, plainIp(v, `aux address ${k}`)])),
    poolId: own?.id ?? '',
    family,
  };
}

export function networkDriverHandlers(ctl: Controller, driver: string): Handlers {
  const caps = ctl.driverCapabilities(driver);
  return {
    'Plugin.Activate': async () => ({ Implements: ['NetworkDriver'] }),

    'NetworkDriver.GetCapabilities': async () => ({ Scope: caps.scope, ConnectivityScope: caps.connectivityScope }),

    'NetworkDriver.CreateNetwork': async (body) => {
      const b = Body.of('CreateNetwork', body);
      const id = b.id('NetworkID');
      // dockerd never replays CreateNetwork; a repeat of a known one is answered as done.
      if (await ctl.networkById(id)) return {};
      const opts = b.obj('Options');
      const pools = [
        ...(await Promise.all(b.list('IPv4Data').map((d) => subnetOf(ctl, d, 4, driver)))),
        ...(await Promise.all(b.list('IPv6Data').map((d) => subnetOf(ctl, d, 6, driver)))),
      ];
      if (!pools.some((p) => p.family === 4)) throw new StrandError('invalid', `the strand-${driver} driver needs an IPv4 subnet`);
      await ctl.createNetwork({
        id,
        name: `docker-${id.slice(0, 12)}`,
        driver,
        pools,
        ipv6: opts.bool('com.docker.network.enable_ipv6'),
        internal: opts.bool('com.docker.network.internal'),
        options: driverOptions(driver, opts.strings(GENERIC)),
        labels: { 'strand.engine': 'docker' },
      });
      return {};
    },

    'NetworkDriver.DeleteNetwork': async (body) => {
      const id = Body.of('DeleteNetwork', body).id('NetworkID');
      const net = await ctl.networkById(id);
      if (!net) return {};
      // dockerd deletes its endpoints first; any left are ones it dropped while strand was down.
      for (const ep of await ctl.endpointsOf(net)) if (!ep.sandboxId) await ctl.deleteDetachedEndpoint(ep.id);
      await ctl.deleteNetwork(id);
      return {};
    },

    'NetworkDriver.CreateEndpoint': async (body) => {
      const b = Body.of('CreateEndpoint', body);
      const networkId = b.id('NetworkID');
      const id = b.id('EndpointID');
      const iface = b.obj('Interface');
      const mac = iface.str('MacAddress');
      if (mac && !MAC.test(mac)) throw new StrandError('invalid', `invalid MAC address "${mac}"`);
      const addresses = [iface.str('Address'), iface.str('AddressIPv6')].filter((a) => a !== '');
      if (!addresses.length) throw new StrandError('invalid', `the strand-${driver} driver needs an address for the endpoint: use an IPAM driver that gives one (not --ipam-driver null)`);
      const opts = b.obj('Options');
      portRequests(opts); // bad -p specs fail here, before any interface exists
      const ep = await ctl.createDetachedEndpoint(networkId, { id, addresses, mac: mac.toLowerCase(), exposed: exposedPorts(opts) });
      // Only empty fields may be filled in; the engine sets this MAC on the interface.
      return mac ? {} : { Interface: { MacAddress: ep.mac } };
    },

    'NetworkDriver.EndpointOperInfo': async (body) => {
      const ep = await ctl.getDetachedEndpoint(Body.of('EndpointOperInfo', body).id('EndpointID'));
      if (!ep) return { Value: {} };
      return { Value: { id: ep.id, addresses: ep.addresses, mac: ep.mac, ports: ep.ports, exposed: ep.exposed, ...ep.driverState } };
    },

    'NetworkDriver.DeleteEndpoint': async (body) => {
      await ctl.deleteDetachedEndpoint(Body.of('DeleteEndpoint', body).id('EndpointID'));
      return {};
    },

    'NetworkDriver.Join': async (body) => {
      const b = Body.of('Join', body);
      const { join } = await ctl.joinDetached(b.id('EndpointID'));
      const gateways = join.noDefaultRoute ? {} : { ...(join.gateway ? { Gateway: join.gateway } : {}), ...(join.gatewayV6 ? { GatewayIPv6: join.gatewayV6 } : {}) };
      return {
        InterfaceName: { SrcName: join.srcName, DstPrefix: 'eth' },
        // A gateway of ours keeps dockerd from attaching docker_gwbridge; strand publishes the ports.
        ...gateways,
        StaticRoutes: join.routes.map((r) => (r.gateway ? { Destination: r.dst, RouteType: 0, NextHop: r.gateway } : { Destination: r.dst, RouteType: 1 })),
        DisableGatewayService: false,
      };
    },

    'NetworkDriver.Leave': async (body) => {
      await ctl.leaveDetached(Body.of('Leave', body).id('EndpointID'));
      return {};
    },

    'NetworkDriver.ProgramExternalConnectivity': async (body) => {
      const b = Body.of('ProgramExternalConnectivity', body);
      const opts = b.obj('Options');
      await ctl.publishDetached(b.id('EndpointID'), portRequests(opts), exposedPorts(opts));
      return {};
    },

    'NetworkDriver.RevokeExternalConnectivity': async (body) => {
      await ctl.unpublishDetached(Body.of('RevokeExternalConnectivity', body).id('EndpointID'));
      return {};
    },

    // Node discovery matters only to multi-host drivers; strand's hosts meet through the store.
    'NetworkDriver.DiscoverNew': async (body) => (Body.of('DiscoverNew', body).int('DiscoveryType'), {}),
    'NetworkDriver.DiscoverDelete': async (body) => (Body.of('DiscoverDelete', body).int('DiscoveryType'), {}),
    // Swarm managers' allocation step: strand needs no network-wide state from the manager.
    'NetworkDriver.AllocateNetwork': async (body) => (Body.of('AllocateNetwork', body).id('NetworkID'), { Options: {} }),
    'NetworkDriver.FreeNetwork': async (body) => (Body.of('FreeNetwork', body).id('NetworkID'), {}),
  };
}
