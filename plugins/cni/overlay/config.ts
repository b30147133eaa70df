// strand-overlay's configuration: which strand overlay network to attach to.
// The network (its subnet, MTU, VNI) is made once with `strand network create
// -d overlay`; the plugin never creates one, so every host's config can only
// name the same network and never redefine it.
import { CniError, CNI_CODES, type NetConf } from '../protocol/types.js';

export interface OverlayConf {
  /** Name or id of the strand overlay network. */
  network: string;
}

function invalid(msg: string): CniError {
  return new CniError(CNI_CODES.invalidConfig, msg);
}

export function parseOverlayConf(conf: NetConf): OverlayConf {
  const network = conf.network;
  if (network === undefined || network === '') throw invalid('"network" is required: the name or id of a strand overlay network ("strand network create -d overlay --subnet CIDR NAME" makes one)');
  if (typeof network !== 'string') throw invalid(`invalid "network" ${JSON.stringify(network)}: must be the name or id of a strand overlay network`);
  // Keys that would redefine the network per host are refused rather than ignored.
  if (conf.mtu !== undefined) throw invalid('"mtu" cannot be set per attachment: an overlay network has one MTU on every host (the underlay MTU minus 50, or --opt mtu=N at "strand network create")');
  if (conf.subnet !== undefined) throw invalid(`"subnet" cannot be set here: strand-overlay does not create networks; create "${network}" with "strand network create -d overlay --subnet CIDR ${network}"`);
  if (conf.ipam !== undefined && Object.keys(conf.ipam).length) throw invalid('"ipam" cannot be set here: addresses come from the overlay network\'s cluster-wide pool; ask for one with runtimeConfig.ips, args.cni.ips or CNI_ARGS IP=');
  return { network };
}
