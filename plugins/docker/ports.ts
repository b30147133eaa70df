// Docker's port options (com.docker.network.portmap and
// com.docker.network.endpoint.exposedports, from -p/-P/--expose) as core's
// port requests. Proto numbers are IP protocol numbers.
import { isIP } from 'node:net';
import { StrandError } from '../../common/errors.js';
import type { PortRequest } from '../../core/ports.js';
import type { Body } from './schema.js';

export const PORTMAP = 'com.docker.network.portmap';
export const EXPOSED = 'com.docker.network.endpoint.exposedports';

const PROTOS: Record<number, 'tcp' | 'udp'> = { 6: 'tcp', 17: 'udp' };

function proto(n: number): 'tcp' | 'udp' {
  const p = PROTOS[n];
  if (!p) throw new StrandError('invalid', n === 132 ? 'strand does not publish sctp ports; publish tcp or udp' : `unknown port protocol number ${n}: use tcp or udp`);
  return p;
}

function port(n: number, what: string, zeroOk: boolean): number {
  if (n < (zeroOk ? 0 : 1) || n > 65535) throw new StrandError('invalid', `invalid ${what} ${n}: use 1 to 65535`);
  return n;
}

export function portRequests(options: Body): PortRequest[] {
  return options.list(PORTMAP).map((b) => {
    const hostIp = b.str('HostIP');
    if (hostIp && !isIP(hostIp)) throw new StrandError('invalid', `invalid host address "${hostIp}" in a published port`);
    if (hostIp.includes('%')) throw new StrandError('invalid', `invalid host address "${hostIp}" in a published port: it has an IPv6 zone id; publish on the address alone ("${hostIp.slice(0, hostIp.indexOf('%'))}")`);
    const hostPort = port(b.int('HostPort'), 'host port', true);
    const end = b.int('HostPortEnd');
    const req: PortRequest = { proto: proto(b.int('Proto')), hostIp, hostPort, containerPort: port(b.int('Port'), 'container port', false) };
    // Docker sends HostPortEnd = HostPort for a single port; only a real range matters.
    if (end && end !== hostPort && hostPort !== 0) {
      if (end < hostPort) throw new StrandError('invalid', `invalid host port range ${hostPort}-${end}`);
      req.hostPortEnd = port(end, 'host port', false);
    }
    return req;
  });
}

export function exposedPorts(options: Body): { proto: 'tcp' | 'udp'; port: number }[] {
  return options.list(EXPOSED).map((b) => ({ proto: proto(b.int('Proto')), port: port(b.int('Port'), 'exposed port', false) }));
}
