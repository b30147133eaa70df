// Ids and the names derived from them. Kernel names come from ids so that a
// link or namespace can always be traced back to its record (and GC can find
// what no record owns) and stay within IFNAMSIZ.
import { createHash, randomBytes } from 'node:crypto';
import { StrandError } from '../common/errors.js';

/** A 64-hex-digit id, like Docker's. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

export const shortId = (id: string): string => id.slice(0, 12);

/**
 * Ids of CNI networks and attachments: derived from what every CNI verb is
 * told (network name, container id, interface), so DEL, CHECK and GC find
 * what ADD made. They start with "cni" (never hex, as other ids are), so the
 * names and rules derived from them (svcni… veths, STRAND-P-cni… chains) are
 * told apart from what strand's own records own: reconcile leaves them to
 * CNI's DEL and GC.
 */
export const cniId = (text: string): string => 'cni' + createHash('sha256').update(text).digest('hex').slice(0, 61);
export const cniNetworkId = (network: string): string => cniId(`cni/${network}`);
/** Labels on a CNI attachment's endpoint record: GC finds a CNI network's attachments by them, the reclaim its interface. */
export const CNI_LABEL = { network: 'cni.network', containerId: 'cni.containerId', ifName: 'cni.ifName', netns: 'cni.netns' } as const;
export const cniAttachmentId = (network: string, containerId: string, ifName: string): string => cniId(`cni/${network}/${containerId}/${ifName}`);

/** Prefixes of every kernel object name strand derives from an id. */
export const NAME_PREFIX = {
  bridge: 'sb-', // sb-<12 hex>: a bridge network's bridge
  hostVeth: 'sv', // sv<12 hex>: host end of an endpoint's veth
  tempVeth: 'st', // st<12 hex>: sandbox end before it is renamed inside the sandbox
  netns: 'strand-', // strand-<12 hex>: a sandbox's namespace under /run/netns
} as const;

export const bridgeName = (networkId: string): string => NAME_PREFIX.bridge + shortId(networkId);
export const hostVethName = (endpointId: string): string => NAME_PREFIX.hostVeth + shortId(endpointId);
export const tempVethName = (endpointId: string): string => NAME_PREFIX.tempVeth + shortId(endpointId);
export const sandboxNetnsName = (sandboxId: string): string => NAME_PREFIX.netns + shortId(sandboxId);

/** The short id a derived name carries, or undefined if it is not one of ours. */
export function idFromName(name: string, prefix: string): string | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  return /^[0-9a-f]{12}$/.test(rest) ? rest : undefined;
}

/** Names users give networks and sandboxes: Docker's rule. */
export function validateName(name: string, what: string): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(name)) {
    throw new StrandError('invalid', `invalid ${what} name "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 128 characters`);
  }
}
