// Turning requested port publications (firewall's parsed -p specs) into
// bindings: a dynamic host port (0, or a host range) gets a port that no
// endpoint claims and no socket on the host holds.
import { DYNAMIC_PORT_RANGE, pickFreePort, type PortMapping } from '../firewall/ports.js';
import type { PortBinding } from './types.js';

export type PortRequest = PortMapping;

/** claimed() lists the host ports endpoints hold; it is asked only when a port must be chosen. */
export async function resolvePorts(requests: PortRequest[], claimed: (proto: 'tcp' | 'udp') => Promise<Set<number>>): Promise<PortBinding[]> {
  const dynamic = (r: PortRequest): boolean => r.hostPort === 0 || (r.hostPortEnd !== undefined && r.hostPortEnd !== r.hostPort);
  // Fixed ports of this same request are taken too, so a dynamic one never lands on them.
  const mine = { tcp: new Set<number>(), udp: new Set<number>() };
  for (const r of requests) if (!dynamic(r)) mine[r.proto].add(r.hostPort);
  const taken: Partial<Record<'tcp' | 'udp', Set<number>>> = {};
  const out: PortBinding[] = [];
  for (const r of requests) {
    let hostPort = r.hostPort;
    if (dynamic(r)) {
      const range = hostPort === 0 ? DYNAMIC_PORT_RANGE : { start: hostPort, end: r.hostPortEnd! };
      const set = (taken[r.proto] ??= new Set([...(await claimed(r.proto)), ...mine[r.proto]]));
      hostPort = pickFreePort(range, set, r.proto);
      set.add(hostPort);
    }
    out.push({ proto: r.proto, hostIp: r.hostIp ?? '', hostPort, containerPort: r.containerPort });
  }
  return out;
}
