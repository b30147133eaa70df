// Ids of CNI networks and attachments: stable per (network, container,
// interface), so DEL, CHECK and GC find what ADD made.
import { createHash } from 'node:crypto';

/**
 * Ids of CNI networks and attachments start with "cni" (never hex, as core's
 * are), so the names and rules derived from them (svcni… veths, STRAND-P-cni…
 * chains) are told apart from what strand's own records own: reconcile leaves
 * them to CNI's DEL and GC.
 */
export const hashId = (text: string): string => 'cni' + createHash('sha256').update(text).digest('hex').slice(0, 61);
export const attachmentId = (network: string, containerId: string, ifName: string): string => hashId(`cni/${network}/${containerId}/${ifName}`);
