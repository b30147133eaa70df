// What the bridge driver asks the firewall for. Inputs are validated once in
// validate.ts; rule generation trusts them.
import type { PortMapping } from './ports.js';

export type { PortMapping, Proto } from './ports.js';
export type { Backend, Family } from './backend.js';

export interface NetworkRules {
  /** Network id (short form); used in chain names and rule comments. */
  id: string;
  /** The network's bridge device in the firewall's namespace. */
  bridge: string;
  /** IPv4 and/or IPv6 CIDRs of the network. */
  subnets: string[];
  /** Inter-container traffic on the bridge allowed. */
  icc: boolean;
  /** No way in or out except within the bridge. */
  internal: boolean;
  /** Outbound NAT for traffic leaving through any other interface. */
  masquerade: boolean;
  /** SNAT to this address instead of MASQUERADE (for its family only). */
  hostIp?: string;
  /**
   * A tunnel's UDP port (an overlay's VXLAN): the host's outgoing packets to it
   * skip conntrack, so no NAT rule can rewrite them (drivers/overlay/README.md).
   */
  untrackedUdpPort?: number;
}

export interface EndpointPorts {
  endpointId: string;
  networkId: string;
  /** The bridge of the endpoint's network. */
  bridge: string;
  /** The endpoint's address (v4 or v6); a dual-stack endpoint calls publish() once per address. */
  containerIp: string;
  /**
   * Concrete mappings (hostPort chosen). Mappings whose hostIp is of the other
   * family than containerIp are skipped, as Docker does.
   */
  ports: PortMapping[];
}
