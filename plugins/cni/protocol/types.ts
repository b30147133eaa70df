// The CNI protocol's shapes (spec 1.0/1.1), as strand's plugins hold them
// inside: results always in the 1.1 form, converted only when printed.

/** Versions strand's plugins speak, newest first. */
export const CNI_VERSIONS = ['1.1.0', '1.0.0', '0.4.0', '0.3.1', '0.3.0'] as const;
export type CniVersion = (typeof CNI_VERSIONS)[number];

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';

/** The spec's error codes (and libcni's 999 for internal failures). */
export const CNI_CODES = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notReady: 50,
  notReadyDegraded: 51,
  internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    super(msg);
    this.name = 'CniError';
  }
}

export interface CniInterface {
  name: string;
  mac?: string;
  /** The netns path for container interfaces; absent or '' for host ones. */
  sandbox?: string;
  /** 1.1 only, like socketPath and pciID: dropped when printed for older versions. */
  mtu?: number;
  socketPath?: string;
  pciID?: string;
}

export interface CniIp {
  /** CIDR, e.g. 10.1.0.5/16. */
  address: string;
  gateway?: string;
  /** Index into interfaces. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A result in 1.1 form (cniVersion says which version it will be printed as). */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** One plugin's configuration as the runtime sends it on stdin (unknown keys kept). */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam?: { type?: string; [key: string]: unknown };
  dns?: CniDns;
  runtimeConfig?: Record<string, unknown>;
  prevResult?: CniResult;
  args?: Record<string, unknown>;
  /** Declared by the conflist; libcni leaves it in the request. */
  capabilities?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Attachment {
  containerId: string;
  ifName: string;
}

/** A parsed, validated invocation. */
export interface CniRequest {
  command: CniCommand;
  containerId: string;
  /** Empty when the runtime gave none (DEL may). */
  netns: string;
  ifName: string;
  /** CNI_ARGS, keys as given. */
  args: Record<string, string>;
  path: string[];
  config: NetConf;
  /** GC: the attachments that must be kept; undefined when the runtime sent no list. */
  validAttachments?: Attachment[];
  /** The plugin's environment (STRAND_STORE, STRAND_RUN_DIR): the daemon serves many callers. */
  env?: Record<string, string | undefined>;
}

export interface PluginHandlers {
  add(req: CniRequest): Promise<CniResult>;
  del(req: CniRequest): Promise<void>;
  check(req: CniRequest): Promise<void>;
  gc?(req: CniRequest): Promise<void>;
  status?(req: CniRequest): Promise<void>;
}
