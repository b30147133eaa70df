// Kernel names of an overlay network's devices, derived from its id so that
// the agent and reconcile find them again (and they fit IFNAMSIZ).
import { shortId } from '../../core/ids.js';

export const OVERLAY_PREFIX = {
  bridge: 'so-', // so-<12 hex>: the network's bridge on this host
  vxlan: 'vx-', // vx-<12 hex>: its VXLAN device, a port of that bridge
} as const;

export const overlayBridgeName = (networkId: string): string => OVERLAY_PREFIX.bridge + shortId(networkId);
export const vxlanName = (networkId: string): string => OVERLAY_PREFIX.vxlan + shortId(networkId);

/** The UDP port VXLAN uses (IANA). */
export const VXLAN_PORT = 4789;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD = 50;
