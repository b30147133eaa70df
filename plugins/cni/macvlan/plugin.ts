// strand-macvlan: the CNI front door to strand's macvlan driver, with the
// reference macvlan plugin's fields (master, mode, mtu): the container gets a
// macvlan of the master made straight inside its namespace.
import { createHash } from 'node:crypto';
import { Netlink, openNetns, type NetNs } from '../../../netlink/index.js';
import { withHandles } from '../protocol/handles.js';
import { MacvlanDriver } from '../../../drivers/macvlan/index.js';
import { configureEndpoint } from '../../../core/sandbox-net.js';
import type { EndpointRecord, NetworkRecord } from '../../../core/types.js';
import { getCi, runtimeValue } from '../protocol/args.js';
import { delegateIpam } from '../ipam/delegate.js';
import { CniError, CNI_CODES, type CniRequest, type CniResult, type PluginHandlers } from '../protocol/types.js';

interface MacvlanConf {
  master: string;
  mode: string;
  mtu?: number;
  ipamType?: string;
}

function invalid(msg: string): CniError {
  return new CniError(CNI_CODES.invalidConfig, msg);
}

function parseConf(req: CniRequest, host: Netlink): MacvlanConf {
  const c = req.config;
  let master = c.master;
  if (master === undefined || master === '') {
    // As the reference plugin: the interface of the default route.
    const def = host.routes.list({ family: 4 }).find((r) => r.dst === 'default' && r.index !== undefined);
    if (!def) throw invalid('no "master" given and the host has no default route to take it from');
    master = host.links.get(def.index!).name;
  }
  if (typeof master !== 'string') throw invalid(`invalid "master" ${JSON.stringify(master)}: must be an interface name`);
  const mode = c.mode ?? 'bridge';
  if (typeof mode !== 'string') throw invalid(`invalid "mode" ${JSON.stringify(mode)}: must be bridge, private, vepa or passthru`);
  if (c.mtu !== undefined && (typeof c.mtu !== 'number' || !Number.isInteger(c.mtu))) throw invalid(`invalid "mtu" ${JSON.stringify(c.mtu)}: must be an integer`);
  const type = c.ipam?.type;
  return { master, mode, ...(c.mtu !== undefined ? { mtu: c.mtu as number } : {}), ...(type ? { ipamType: type } : {}) };
}

function records(req: CniRequest, conf: MacvlanConf, driver: MacvlanDriver, result: CniResult | undefined): { network: NetworkRecord; endpoint: EndpointRecord } {
  const network: NetworkRecord = {
    id: createHash('sha256').update(`cni/${req.config.name}`).digest('hex'),
    name: req.config.name,
    driver: 'macvlan',
    scope: 'local',
    internal: false,
    ipv6: false,
    subnets: [],
    options: { parent: conf.master, macvlan_mode: conf.mode, ...(conf.mtu !== undefined ? { mtu: String(conf.mtu) } : {}) },
    labels: {},
    driverState: {},
    created: '',
  };
  network.driverState = driver.validateNetwork(network, []);
  const mac = runtimeValue(req.config, 'mac') ?? getCi(getCi(req.config.args, 'cni'), 'mac') ?? req.args.MAC;
  const endpoint: EndpointRecord = {
    id: createHash('sha256').update(`cni/${req.config.name}/${req.containerId}/${req.ifName}`).digest('hex'),
    networkId: network.id,
    sandboxId: req.containerId,
    ifName: req.ifName,
    mac: typeof mac === 'string' ? mac : '',
    addresses: (result?.ips ?? []).map((ip) => ip.address),
    ports: [],
    exposed: [],
    driverState: {},
    created: '',
  };
  return { network, endpoint };
}


export function macvlanHandlers(): PluginHandlers {
  return {
    async add(req) {
      return withHandles(req.netns, async ({ host, ns, inside }) => {
        const conf = parseConf(req, host);
        const driver = new MacvlanDriver(host);
        if (inside.links.find(req.ifName)) throw new CniError(CNI_CODES.internal, `container interface ${req.ifName} already exists in ${req.netns}`);
        const ipam = conf.ipamType ? await delegateIpam(req, 'ADD') : undefined;
        try {
          const { network, endpoint } = records(req, conf, driver, ipam);
          await driver.createNetwork(network);
          endpoint.driverState = await driver.createEndpoint({ network, endpoint, sandboxNs: ns });
          const gateways = new Map<4 | 6, string | undefined>((ipam?.ips ?? []).map((ip) => [ip.address.includes(':') ? 6 : 4, ip.gateway]));
          configureEndpoint(host, ns, endpoint, {
            srcName: req.ifName,
            inSandbox: true,
            routes: (ipam?.routes ?? []).map((r) => {
              const gw = r.gw ?? gateways.get(r.dst.includes(':') ? 6 : 4);
              return { dst: r.dst, ...(gw ? { gateway: gw } : {}) };
            }),
            noDefaultRoute: true,
          });
          const ctr = inside.links.get(req.ifName);
          const dns = req.config.dns && Object.keys(req.config.dns).length ? req.config.dns : ipam?.dns;
          return {
            cniVersion: req.config.cniVersion,
            interfaces: [{ name: ctr.name, mac: ctr.mac ?? '', sandbox: req.netns }],
            ips: (ipam?.ips ?? []).map((ip) => ({ ...ip, interface: 0 })),
            routes: ipam?.routes ?? [],
            ...(dns ? { dns } : {}),
          };
        } catch (err) {
          inside.links.delete(req.ifName, { missingOk: true });
          if (conf.ipamType) await delegateIpam(req, 'DEL').catch(() => undefined);
          throw err;
        }
      });
    },

    async del(req) {
      const type = req.config.ipam?.type;
      if (type) await delegateIpam(req, 'DEL');
      if (!req.netns) return;
      let ns: NetNs;
      try {
        ns = openNetns(req.netns);
      } catch {
        return; // the namespace is gone, and the macvlan with it
      }
      const inside = Netlink.open(ns);
      try {
        inside.links.delete(req.ifName, { missingOk: true });
      } finally {
        inside.close();
        ns.close();
      }
    },

    async check(req) {
      await withHandles(req.netns, async ({ host, inside }) => {
        const conf = parseConf(req, host);
        const fail = (msg: string): never => {
          throw new CniError(CNI_CODES.internal, msg);
        };
        const link = inside.links.find(req.ifName) ?? fail(`container interface ${req.ifName} does not exist in ${req.netns}`);
        if (link.kind !== 'macvlan') fail(`container interface ${req.ifName} is a ${link.kind ?? 'device'}, not a macvlan`);
        if (link.macvlan?.mode !== conf.mode) fail(`container interface ${req.ifName} is in ${link.macvlan?.mode} mode, the config says ${conf.mode}`);
        const master = host.links.get(conf.master);
        if (link.parentIndex !== master.index) fail(`container interface ${req.ifName} is not on master ${conf.master}`);
        const have = new Set(inside.addresses.list({ dev: req.ifName }).map((a) => a.cidr));
        for (const ip of req.config.prevResult?.ips ?? []) if (!have.has(ip.address)) fail(`address ${ip.address} is missing from ${req.ifName}`);
        if (conf.ipamType) await delegateIpam(req, 'CHECK');
      });
    },

    async gc(req) {
      if (req.config.ipam?.type) await delegateIpam(req, 'GC');
    },

    async status(req) {
      if (req.config.ipam?.type) await delegateIpam(req, 'STATUS');
    },
  };
}
