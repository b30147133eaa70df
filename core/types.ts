// The runtime core's model, as in Docker's CNM: a Network a driver provides,
// Endpoints on it, and Sandboxes (network namespaces) that endpoints join.
// These records are what core persists in the store.
import type { NetNs } from '../netlink/index.js';

/** A published port, resolved: hostPort is never 0 here. */
export interface PortBinding {
  proto: 'tcp' | 'udp';
  /** Host address to listen on; '' for all. */
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

export interface IpamConfig {
  /** IPAM pool ids owned by this network, one per subnet. */
  poolIds: string[];
}

export interface SubnetInfo {
  subnet: string;
  gateway?: string;
  ipRange?: string;
  auxAddresses: Record<string, string>;
  poolId: string;
  family: 4 | 6;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: string;
  /** 'local' networks belong to one host; 'global' ones span hosts sharing the store. */
  scope: 'local' | 'global';
  internal: boolean;
  ipv6: boolean;
  subnets: SubnetInfo[];
  /** --opt key=value, verbatim. */
  options: Record<string, string>;
  labels: Record<string, string>;
  /** What the driver chose and must find again (bridge name, MTU, ...). */
  driverState: Record<string, string>;
  /** The subnets' pools belong to an outside IPAM (Docker's IPAM driver), which releases them itself. */
  externalPools?: boolean;
  /** A CNI network: what the driver's networkFingerprint said when its kernel state was last made. */
  kernelFingerprint?: string;
  created: string;
}

export interface EndpointRecord {
  id: string;
  networkId: string;
  /** '' for a detached endpoint: an engine (Docker) owns the sandbox and moves the interface itself. */
  sandboxId: string;
  /** Interface name inside the sandbox. */
  ifName: string;
  mac: string;
  /** Addresses with prefix length, e.g. 172.18.0.2/16. */
  addresses: string[];
  ports: PortBinding[];
  /** Ports exposed without a host binding (docker -P --expose). */
  exposed: { proto: 'tcp' | 'udp'; port: number }[];
  driverState: Record<string, string>;
  /** Who made a detached endpoint and for what (a CNI attachment's network, container and interface), so its maker finds it again. */
  labels?: Record<string, string>;
  created: string;
}

export type SandboxKind = 'netns' | 'host' | 'container';

export interface SandboxRecord {
  id: string;
  name: string;
  kind: SandboxKind;
  /** Path of the network namespace (/run/netns/NAME); the host's for 'host'. */
  netnsPath: string;
  /** For kind 'container': the sandbox whose namespace this one shares. */
  sharesWith?: string;
  hostname: string;
  dns: { servers: string[]; search: string[]; options: string[] };
  extraHosts: { name: string; ip: string }[];
  /** The sandbox's first process, whose UTS and mount namespaces later processes join. */
  pid?: number;
  /** Start time of pid, so a reused pid is never mistaken for it. */
  pidStart?: string;
  /** The process that owns a foreground sandbox (strand run without -d); gc removes it when that process is gone. */
  ownerPid?: number;
  /** Start time of ownerPid (from /proc), so a reused pid is not mistaken for the owner. */
  ownerStart?: string;
  created: string;
}

/** What a driver tells the sandbox to set up for a joining endpoint. */
export interface JoinInfo {
  /** Name of the interface the driver made for the sandbox, where it is now. */
  srcName: string;
  /** True when srcName already lives inside the sandbox's namespace (made there directly). */
  inSandbox: boolean;
  gateway?: string;
  gatewayV6?: string;
  /** Extra routes inside the sandbox. */
  routes: { dst: string; gateway?: string; onLink?: boolean }[];
  /** Skip the default route (the network is internal or another endpoint owns it). */
  noDefaultRoute?: boolean;
}

export interface DriverContext {
  /** A namespace handle on the host's network namespace (where bridges live). */
  readonly hostNs?: NetNs;
}

/** Everything a driver gets about an endpoint it creates. */
export interface EndpointRequest {
  network: NetworkRecord;
  endpoint: EndpointRecord;
  /** When known at creation: the sandbox's namespace, so the interface can be made straight inside it. */
  sandboxNs?: NetNs;
}

export interface DriverCapabilities {
  scope: 'local' | 'global';
  connectivityScope: 'local' | 'global';
  /** Whether networks of this driver get subnets from IPAM. */
  needsIpam: boolean;
  /**
   * The endpoint's interface lives only in the sandbox (a macvlan): removing
   * an endpoint an engine's sandbox holds means removing it there. A veth
   * goes with its host end (the driver's deleteEndpoint), so it need not be.
   */
  sandboxOnlyInterface?: boolean;
}

/**
 * A network driver. Every method is idempotent: called again after a crash
 * or for something already gone, it succeeds. Drivers hold no state of their
 * own beyond the kernel's and the records' driverState.
 */
export interface Driver {
  readonly name: string;
  readonly capabilities: DriverCapabilities;
  /** Checks options and returns the driver state to persist (e.g. the bridge name). */
  validateNetwork(network: NetworkRecord, existing: NetworkRecord[]): Record<string, string>;
  createNetwork(network: NetworkRecord): Promise<void>;
  /** `others`: the networks this host keeps; what the network shares with one of them (a bridge) stays. */
  deleteNetwork(network: NetworkRecord, others?: NetworkRecord[]): Promise<void>;
  /** Makes the endpoint's interface; returns driver state to persist (host-side names, MAC). */
  createEndpoint(req: EndpointRequest): Promise<Record<string, string>>;
  deleteEndpoint(network: NetworkRecord, endpoint: EndpointRecord): Promise<void>;
  join(req: EndpointRequest): Promise<JoinInfo>;
  leave(network: NetworkRecord, endpoint: EndpointRecord): Promise<void>;
  programExternalConnectivity(network: NetworkRecord, endpoint: EndpointRecord): Promise<void>;
  revokeExternalConnectivity(network: NetworkRecord, endpoint: EndpointRecord): Promise<void>;
  /** After a restart: make the kernel match these records again (bridges, rules). */
  restoreNetwork(network: NetworkRecord, endpoints: EndpointRecord[]): Promise<void>;
  /** Kernel objects this driver made that no record owns, for reconcile to remove. */
  orphans?(networks: NetworkRecord[], endpoints: EndpointRecord[]): Promise<string[]>;
  /**
   * What this host's kernel holds of the network now, as a short string that
   * changes when the state is made anew (a bridge's ifindex): a CNI network is
   * made again when it differs from the one recorded (after a reboot), and
   * not touched otherwise. Undefined: nothing to tell, make it every time
   * (cheap for that driver).
   */
  networkFingerprint?(network: NetworkRecord): string | undefined;
  /** A network spanning hosts: remove this host's kernel state only, the network lives on for the others. */
  removeLocal?(network: NetworkRecord): Promise<void>;
}

/**
 * What the overlay's peer agent and the front doors must know of a cluster
 * network's devices on this host, so that none of them imports the driver.
 */
export interface ClusterDataPlane {
  /** The tunnel device the agent programs FDB and neighbour entries on. */
  tunnelDevice(networkId: string): string;
  /** The bridge the network's endpoints are ports of. */
  bridgeDevice(networkId: string): string;
  /** The MTU the network's devices should have with these hosts live and this host's own underlay MTU. */
  clusterMtu(network: NetworkRecord, hosts: Iterable<{ underlayMtu: number }>, ownUnderlayMtu: number): number;
  /** Gives the network's devices on this host that MTU; returns what it changed. */
  setMtu(networkId: string, mtu: number): string[];
}

/** The gateways a network's subnets give, as JoinInfo carries them (absent keys for a family without one). */
export function networkGateways(network: NetworkRecord): Pick<JoinInfo, 'gateway' | 'gatewayV6'> {
  const gw4 = network.subnets.find((s) => s.family === 4)?.gateway;
  const gw6 = network.subnets.find((s) => s.family === 6)?.gateway;
  return { ...(gw4 ? { gateway: gw4 } : {}), ...(gw6 ? { gatewayV6: gw6 } : {}) };
}
