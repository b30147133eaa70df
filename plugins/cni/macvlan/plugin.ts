// strand-macvlan: the CNI front door to strand's macvlan networks, with the
// reference macvlan plugin's fields (master, mode, mtu): core gives the
// container a macvlan of the master made straight inside its namespace.
import type { Netlink } from '../../../netlink/index.js';
import type { Controller, CniNetworkRequest } from '../../../core/controller.js';
import { formatCidr, parseCidr } from '../../../ipam/cidr.js';
import { withHandles } from '../protocol/handles.js';
import { attachmentId } from '../protocol/attachment.js';
import { requestedMac } from '../protocol/runtime-args.js';
import { attachmentOf, collectAttachments, withController } from '../controller.js';
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

/** The network as this config and these addresses describe it, in the macvlan driver's own option names. */
function networkRequest(req: CniRequest, conf: MacvlanConf, result: CniResult | undefined): CniNetworkRequest {
  return {
    name: req.config.name,
    driver: 'macvlan',
    subnets: (result?.ips ?? []).map((ip) => ({ subnet: formatCidr(parseCidr(ip.address, { lenient: true })) })),
    options: { parent: conf.master, macvlan_mode: conf.mode, ...(conf.mtu !== undefined ? { mtu: String(conf.mtu) } : {}) },
  };
}

export function macvlanHandlers(daemon?: Controller): PluginHandlers {
  return {
    async add(req) {
      const mac = requestedMac(req);
      return withHandles(req.netns, async ({ host, ns, inside }) => {
        const conf = parseConf(req, host);
        if (inside.links.find(req.ifName)) throw new CniError(CNI_CODES.internal, `container interface ${req.ifName} already exists in ${req.netns}`);
        const ipam = conf.ipamType ? await delegateIpam(req, 'ADD') : undefined;
        try {
          const gateways = new Map<4 | 6, string | undefined>((ipam?.ips ?? []).map((ip) => [ip.address.includes(':') ? 6 : 4, ip.gateway]));
          await withController(daemon, req, (ctl) =>
            ctl.attachCni({
              ...attachmentOf(req, ns, ipam, mac),
              network: networkRequest(req, conf, ipam),
              ports: [],
              // As the reference plugin: the IPAM result's routes, no default route of its own.
              routes: (ipam?.routes ?? []).map((r) => {
                const gw = r.gw ?? gateways.get(r.dst.includes(':') ? 6 : 4);
                return { dst: r.dst, ...(gw ? { gateway: gw } : {}) };
              }),
            }),
          );
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
          // Core undid its part; the addresses go back to the IPAM plugin.
          if (conf.ipamType) await delegateIpam(req, 'DEL').catch(() => undefined);
          throw err;
        }
      });
    },

    async del(req) {
      const type = req.config.ipam?.type;
      if (type) await delegateIpam(req, 'DEL');
      const id = attachmentId(req.config.name, req.containerId, req.ifName);
      const prev = req.config.prevResult;
      // An attachment an older strand made has no record: its macvlan is found in the namespace, when it still exists.
      const conf = { master: String(req.config.master ?? ''), mode: String(req.config.mode ?? 'bridge') };
      const legacy = { network: networkRequest(req, conf, prev), addresses: [], ports: [], ...(req.netns ? { netns: req.netns, ifName: req.ifName } : {}) };
      await withController(daemon, req, (ctl) => ctl.detachCni(req.config.name, id, legacy));
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
      if (req.validAttachments !== undefined) await collectAttachments(daemon, req.config.name, req);
      if (req.config.ipam?.type) await delegateIpam(req, 'GC');
    },

    async status(req) {
      if (req.config.ipam?.type) await delegateIpam(req, 'STATUS');
    },
  };
}
