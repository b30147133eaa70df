// strand-bridge: the CNI front door to strand's bridge driver. A network is
// the config's bridge; an attachment is a veth made straight inside the
// container's namespace, addresses from the IPAM plugin (strand-ipam in
// process, any other by exec), and no process spawned unless firewall rules
// must change (the network's rules once per bridge, ports when asked).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Netlink } from '../../../netlink/index.js';
import { withHandles } from '../protocol/handles.js';
import { Firewall } from '../../../firewall/index.js';
import { BridgeDriver } from '../../../drivers/bridge/index.js';
import { configureEndpoint } from '../../../core/sandbox-net.js';
import { hostVethName, shortId } from '../../../core/ids.js';
import type { EndpointRecord, NetworkRecord } from '../../../core/types.js';
import { formatCidr, parseCidr } from '../../../ipam/cidr.js';
import { attachmentId, hashId } from '../protocol/attachment.js';
import { portMappings, requestedMac } from '../protocol/runtime-args.js';
import { checkContainerSide, failCheck } from '../protocol/check-container.js';
import { parseBridgeConf, type BridgeConf } from './config.js';
import { delegateIpam } from '../ipam/delegate.js';
import { CniError, CNI_CODES, type CniRequest, type CniResult, type PluginHandlers } from '../protocol/types.js';
import { runDir } from '../../../common/defaults.js';

function networkRecord(conf: BridgeConf, name: string, result: CniResult | undefined): NetworkRecord {
  const subnets = (result?.ips ?? []).map((ip) => {
    const cidr = formatCidr(parseCidr(ip.address, { lenient: true }));
    return { subnet: cidr, ...(conf.isGateway && ip.gateway ? { gateway: ip.gateway } : {}), auxAddresses: {}, poolId: '', family: (cidr.includes(':') ? 6 : 4) as 4 | 6 };
  });
  return {
    id: hashId(`cni/${name}`),
    name,
    driver: 'bridge',
    scope: 'local',
    internal: false,
    ipv6: subnets.some((s) => s.family === 6),
    subnets,
    options: {},
    labels: {},
    driverState: { bridge: conf.bridge, mtu: String(conf.mtu), icc: 'true', masquerade: String(conf.ipMasq), hostBindingIpv4: '', hairpin: String(conf.hairpinMode) },
    created: '',
  };
}

function endpointRecord(req: CniRequest, network: NetworkRecord, result: CniResult | undefined, mac: string | undefined): EndpointRecord {
  return {
    id: attachmentId(req.config.name, req.containerId, req.ifName),
    networkId: network.id,
    sandboxId: req.containerId,
    ifName: req.ifName,
    mac: mac ?? '',
    addresses: (result?.ips ?? []).map((ip) => ip.address),
    ports: portMappings(req),
    exposed: [],
    driverState: {},
    created: '',
  };
}


/**
 * The network's firewall rules are made when its bridge is (or when a marker
 * says they were not made for this bridge and these subnets): one batched
 * restore, not one per container as the reference plugin does.
 */
async function ensureNetwork(driver: BridgeDriver, nl: Netlink, network: NetworkRecord, conf: BridgeConf, runDir: string): Promise<void> {
  if (conf.isGateway) checkBridgeAddresses(nl, conf, network);
  driver.ensureBridge(network);
  const bridge = nl.links.get(conf.bridge);
  if (conf.promiscMode) nl.links.set(conf.bridge, { promisc: true });
  const markerDir = join(runDir, 'cni');
  const marker = join(markerDir, `${shortId(network.id)}.rules`);
  const want = JSON.stringify({ ifindex: bridge.index, subnets: network.subnets.map((s) => s.subnet).sort(), masquerade: conf.ipMasq });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return;
  await driver.ensureRules(network);
  mkdirSync(markerDir, { recursive: true });
  writeFileSync(marker, want);
}

const runDirOf = (req: CniRequest): string => runDir(req.env ?? {});

/**
 * Which attachments of a network have published ports: one empty file per
 * endpoint, named by its short id, written before the rules are. The rules
 * name only the endpoint, so GC needs this to find the rules of attachments
 * it no longer knows (an ADD killed after publishing, a netns removed without
 * DEL): the attachment ids cannot be computed back from the rules.
 */
const portsDir = (req: CniRequest, networkId: string): string => join(runDirOf(req), 'cni', `${shortId(networkId)}.ports`);

/** As the reference plugin: a gateway bridge holding another address of that family needs forceAddress. */
function checkBridgeAddresses(nl: Netlink, conf: BridgeConf, network: NetworkRecord): void {
  if (!nl.links.find(conf.bridge)) return;
  const have = nl.addresses.list({ dev: conf.bridge }).filter((a) => a.scope === 0);
  for (const s of network.subnets) {
    if (!s.gateway) continue;
    const wanted = `${s.gateway}/${s.subnet.split('/')[1]}`;
    for (const a of have.filter((x) => x.family === s.family && x.cidr !== wanted)) {
      if (!conf.forceAddress) throw new CniError(CNI_CODES.internal, `"${conf.bridge}" already has an IP address different from ${wanted} (${a.cidr}); set forceAddress to replace it`);
      nl.addresses.delete(conf.bridge, a.cidr, { missingOk: true });
    }
  }
}

export function bridgeHandlers(): PluginHandlers {
  return {
    async add(req) {
      const conf = parseBridgeConf(req.config);
      return withHandles(req.netns, async ({ host, ns, inside }) => {
        if (inside.links.find(req.ifName)) throw new CniError(CNI_CODES.internal, `container interface ${req.ifName} already exists in ${req.netns}`);
        const ipam = conf.ipamType ? await delegateIpam(req, 'ADD') : undefined;
        try {
          const network = networkRecord(conf, req.config.name, ipam);
          const driver = new BridgeDriver(host, () => Firewall.open());
          await ensureNetwork(driver, host, network, conf, runDirOf(req));
          const endpoint = endpointRecord(req, network, ipam, requestedMac(req));
          endpoint.driverState = await driver.createEndpoint({ network, endpoint, sandboxNs: ns });
          const gateways = new Map<4 | 6, string | undefined>((ipam?.ips ?? []).map((ip) => [ip.address.includes(':') ? 6 : 4, ip.gateway]));
          const routes = (ipam?.routes ?? []).map((r) => ({ dst: r.dst, gateway: r.gw ?? gateways.get(r.dst.includes(':') ? 6 : 4) }));
          configureEndpoint(host, ns, endpoint, {
            srcName: req.ifName,
            inSandbox: true,
            ...(conf.isDefaultGateway && gateways.get(4) ? { gateway: gateways.get(4)! } : {}),
            ...(conf.isDefaultGateway && gateways.get(6) ? { gatewayV6: gateways.get(6)! } : {}),
            routes: routes.map((r) => ({ dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}) })),
          });
          if (endpoint.ports.length) {
            mkdirSync(portsDir(req, network.id), { recursive: true });
            writeFileSync(join(portsDir(req, network.id), shortId(endpoint.id)), '');
          }
          await driver.programExternalConnectivity(network, endpoint);
          const br = host.links.get(conf.bridge);
          const veth = host.links.get(endpoint.driverState.hostVeth!);
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
          // Nothing half-made: the addresses go back, the veth (if any) goes.
          host.links.delete(hostVethName(attachmentId(req.config.name, req.containerId, req.ifName)), { missingOk: true });
          if (conf.ipamType) await delegateIpam(req, 'DEL').catch(() => undefined);
          throw err;
        }
      });
    },

    async del(req) {
      const conf = parseBridgeConf(req.config);
      // Addresses first: they matter most, and DEL must free them even when the namespace is gone.
      if (conf.ipamType) await delegateIpam(req, 'DEL');
      const host = Netlink.open();
      try {
        const id = attachmentId(req.config.name, req.containerId, req.ifName);
        host.links.delete(hostVethName(id), { missingOk: true });
        const ports = portMappings(req);
        if (ports.length) {
          const network = networkRecord(conf, req.config.name, undefined);
          const endpoint = endpointRecord(req, network, req.config.prevResult, undefined);
          // Without the addresses of the ADD result, the rules are found by the endpoint's id.
          if (endpoint.addresses.length) await new BridgeDriver(host, () => Firewall.open()).revokeExternalConnectivity(network, endpoint);
          else await (await Firewall.open()).removeEndpointById(shortId(id));
          rmSync(join(portsDir(req, network.id), shortId(id)), { force: true });
        }
      } finally {
        host.close();
      }
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
      const keep = new Set((req.validAttachments ?? []).map((a) => hostVethName(attachmentId(req.config.name, a.containerId, a.ifName))));
      const host = Netlink.open();
      try {
        const br = host.links.find(conf.bridge);
        // Only veths of this network's bridge that no valid attachment owns; other bridges are other networks'.
        if (br && req.validAttachments !== undefined) {
          const stale = host.links.list().filter((l) => l.master === br.index && l.kind === 'veth' && /^svcni[0-9a-f]{9}$/.test(l.name) && !keep.has(l.name));
          host.links.deleteMany(stale.map((l) => l.index), { missingOk: true });
        }
      } finally {
        host.close();
      }
      if (req.validAttachments !== undefined) {
        // Published ports of attachments no longer valid (their veths may be gone with their namespaces).
        const dir = portsDir(req, networkRecord(conf, req.config.name, undefined).id);
        const keepIds = new Set((req.validAttachments ?? []).map((a) => shortId(attachmentId(req.config.name, a.containerId, a.ifName))));
        let recorded: string[] = [];
        try {
          recorded = readdirSync(dir).filter((n) => /^cni[0-9a-f]{9}$/.test(n) && !keepIds.has(n));
        } catch {
          // no ports were ever published on this network
        }
        if (recorded.length) {
          const fw = await Firewall.open();
          for (const id of recorded) {
            await fw.removeEndpointById(id);
            rmSync(join(dir, id), { force: true });
          }
        }
      }
      if (conf.ipamType) await delegateIpam(req, 'GC');
    },

    async status(req) {
      const conf = parseBridgeConf(req.config);
      if (conf.ipamType) await delegateIpam(req, 'STATUS');
    },
  };
}
