// The overlay's devices on this host as core's ClusterDataPlane: the peer
// agent and the front doors ask it for device names and MTUs instead of
// importing the driver.
import type { Netlink } from '../../netlink/index.js';
import type { ClusterDataPlane } from '../../core/types.js';
import { overlayBridgeName, vxlanName } from './names.js';
import { overlayMtu, setOverlayMtu } from './mtu.js';

export function overlayDataPlane(nl: Netlink): ClusterDataPlane {
  return {
    tunnelDevice: vxlanName,
    bridgeDevice: overlayBridgeName,
    clusterMtu: overlayMtu,
    setMtu: (networkId, mtu) => setOverlayMtu(nl, networkId, mtu),
  };
}
