// Turning requested port publications (firewall's parsed -p specs) into
// bindings: a dynamic host port (0, or a host range) gets a port that no
// endpoint claims and no socket on the host holds.
import { DYNAMIC_PORT_RANGE, pickFreePort, type PortMapping } from '../firewall/ports.js';
import type { PortBinding } from './types.js';

export type PortRequest = PortMapping;

export function resolvePorts(requests: PortRequest[], claimed: Record<'tcp' | 'udp', Set<number>>): PortBinding[] {
  const taken = { tcp: new Set(claimed.tcp), udp: new Set(claimed.udp) };
  return requests.map((r) => {
    let hostPort = r.hostPort;
    if (hostPort === 0 || (r.hostPortEnd !== undefined && r.hostPortEnd !== hostPort)) {
      const range = hostPort === 0 ? DYNAMIC_PORT_RANGE : { start: hostPort, end: r.hostPortEnd! };
      hostPort = pickFreePort(range, taken[r.proto], r.proto);
    }
    taken[r.proto].add(hostPort);
    return { proto: r.proto, hostIp: r.hostIp ?? '', hostPort, containerPort: r.containerPort };
  });
}
