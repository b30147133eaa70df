// strand-bridge: the CNI front door to strand's bridge networks. It parses
// the reference bridge plugin's config, asks the IPAM plugin for addresses
// (strand-ipam in process, any other by exec), hands the attachment to core
// (which makes the network on its first ADD, the veth straight inside the
// container's namespace, and the rules; and removes the network with its
// last DEL), and assembles the result.
import { hostVethName } from '../../../core/ids.js';
import type { Controller, CniNetworkRequest } from '../../../core/controller.js';
import { formatCidr, parseCidr } from '../../../ipam/cidr.js';
import { withHandles } from '../protocol/handles.js';
import { attachmentId } from '../protocol/attachment.js';
import { portMappings, requestedMac } from '../protocol/runtime-args.js';
import { checkContainerSide, failCheck } from '../protocol/check-container.js';
import { CniError, CNI_CODES, type CniResult, type PluginHandlers } from '../protocol/types.js';
import { attachmentOf, collectAttachments, withController } from '../controller.js';
import { parseBridgeConf, type BridgeConf } from './config.js';
import { delegateIpam } from '../ipam/delegate.js';

/** The network as this config and these addresses describe it, in the bridge driver's own option names. */
function networkRequest(conf: BridgeConf, name: string, result: CniResult | undefined): CniNetworkRequest {
  return {
    name,
    driver: 'bridge',
    subnets: (result?.ips ?? []).map((ip) => ({ subnet: formatCidr(parseCidr(ip.address, { lenient: true })), ...(conf.isGateway && ip.gateway ? { gateway: ip.gateway } : {}) })),
    options: {
      'bridge.name': conf.bridge,
      mtu: String(conf.mtu),
      masquerade: String(conf.ipMasq),
      hairpin: String(conf.hairpinMode),
      force_address: String(conf.forceAddress),
      promisc: String(conf.promiscMode),
    },
  };
}

const familyOf = (address: string): 4 | 6 => (address.includes(':') ? 6 : 4);

export function bridgeHandlers(daemon?: Controller): PluginHandlers {
  return {
    async add(req) {
      const conf = parseBridgeConf(req.config);
      // Checked before anything is made.
      const ports = portMappings(req);
      const mac = requestedMac(req);
      const id = attachmentId(req.config.name, req.containerId, req.ifName);
      return withHandles(req.netns, async ({ host, ns, inside }) => {
        if (inside.links.find(req.ifName)) throw new CniError(CNI_CODES.internal, `container interface ${req.ifName} already exists in ${req.netns}`);
        const ipam = conf.ipamType ? await delegateIpam(req, 'ADD') : undefined;
        try {
          const gateways = new Map<4 | 6, string | undefined>((ipam?.ips ?? []).map((ip) => [familyOf(ip.address), ip.gateway]));
          const routes = (ipam?.routes ?? []).map((r) => ({ dst: r.dst, gw: r.gw ?? gateways.get(familyOf(r.dst)) }));
          const { endpoint } = await withController(daemon, req, (ctl) =>
            ctl.attachCni({
              ...attachmentOf(req, ns, ipam, mac),
              network: networkRequest(conf, req.config.name, ipam),
              ports,
              ...(conf.isDefaultGateway && gateways.get(4) ? { gateway: gateways.get(4)! } : {}),
              ...(conf.isDefaultGateway && gateways.get(6) ? { gatewayV6: gateways.get(6)! } : {}),
              routes: routes.map((r) => ({ dst: r.dst, ...(r.gw ? { gateway: r.gw } : {}) })),
            }),
          );
          const br = host.links.get(conf.bridge);
          const veth = host.links.get(endpoint.driverState.hostVeth ?? hostVethName(id));
          const ctr = inside.links.get(req.ifName);
          const defaults = conf.isDefaultGateway ? [...gateways.entries()].filter(([, gw]) => gw).map(([f, gw]) => ({ dst: f === 4 ? '0.0.0.0/0' : '::/0', gw: gw! })) : [];
          const dns = req.config.dns && Object.keys(req.config.dns).length ? req.config.dns : ipam?.dns;
          return {
            cniVersion: req.config.cniVersion,
            interfaces: [
              { name: br.name, mac: br.mac ?? '' },
              { name: veth.name, mac: veth.mac ?? '' },
              { name: ctr.name, mac: ctr.mac ?? '', sandbox: req.netns },
            ],
            ips: (ipam?.ips ?? []).map((ip) => ({ ...ip, interface: 2 })),
            routes: [...(ipam?.routes ?? []), ...defaults.filter((d) => !(ipam?.routes ?? []).some((r) => r.dst === d.dst))],
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
      const conf = parseBridgeConf(req.config);
      // Addresses first: they matter most, and DEL must free them even when the namespace is gone.
      if (conf.ipamType) await delegateIpam(req, 'DEL');
      const prev = req.config.prevResult;
      const id = attachmentId(req.config.name, req.containerId, req.ifName);
      await withController(daemon, req, (ctl) =>
        ctl.detachCni(req.config.name, id, { network: networkRequest(conf, req.config.name, prev), addresses: (prev?.ips ?? []).map((ip) => ip.address), ports: portMappings(req) }),
      );
    },

    async check(req) {
      const conf = parseBridgeConf(req.config);
      const prev = req.config.prevResult!;
      await withHandles(req.netns, async ({ host, inside }) => {
        const br = host.links.find(conf.bridge) ?? failCheck(`bridge ${conf.bridge} does not exist`);
        const vethName = hostVethName(attachmentId(req.config.name, req.containerId, req.ifName));
        const veth = host.links.find(vethName) ?? failCheck(`host veth ${vethName} of ${req.containerId}/${req.ifName} does not exist`);
        if (veth.master !== br.index) failCheck(`host veth ${vethName} is not attached to bridge ${conf.bridge}`);
        checkContainerSide(inside, req, prev);
        if (conf.ipamType) await delegateIpam(req, 'CHECK');
      });
    },

    async gc(req) {
      const conf = parseBridgeConf(req.config);
      if (req.validAttachments !== undefined) await collectAttachments(daemon, req.config.name, req);
      if (conf.ipamType) await delegateIpam(req, 'GC');
    },

    async status(req) {
      const conf = parseBridgeConf(req.config);
      if (conf.ipamType) await delegateIpam(req, 'STATUS');
    },
  };
}
