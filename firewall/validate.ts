// Checks the driver's requests before any rule is generated, so bad input
// fails with a message naming the bad field and never reaches iptables.
import { isIP } from 'node:net';
import { StrandError } from '../common/errors.js';
import { validateLinkName, parsePrefix } from '../netlink/index.js';
import { checkId } from './names.js';
import type { EndpointPorts, NetworkRules } from './types.js';

function invalid(what: string, why: string): StrandError {
  return new StrandError('invalid', `${what}: ${why}`);
}

function checkBridge(bridge: unknown, what: string): void {
  try {
    validateLinkName(String(bridge));
  } catch (err) {
    throw invalid(what, (err as Error).message);
  }
  // iptables reads a trailing '+' as a wildcard and '!' as negation: a name
  // with them would make rules match other interfaces.
  if (!/^[A-Za-z0-9_.-]+$/.test(String(bridge))) {
    throw invalid(what, `bridge name "${String(bridge)}" has characters iptables would misread: use letters, digits, '_', '.' or '-'`);
  }
}

export function validateNetwork(n: NetworkRules): void {
  checkId(n?.id, 'network id');
  const what = `network "${n.id}"`;
  checkBridge(n.bridge, what);
  if (!Array.isArray(n.subnets)) throw invalid(what, 'subnets must be a list of CIDRs');
  for (const s of n.subnets) {
    try {
      parsePrefix(String(s));
    } catch (err) {
      throw invalid(what, `subnet ${(err as Error).message}`);
    }
  }
  for (const k of ['icc', 'internal', 'masquerade'] as const) {
    if (typeof n[k] !== 'boolean') throw invalid(what, `${k} must be true or false`);
  }
  if (n.hostIp !== undefined && n.hostIp !== '' && isIP(n.hostIp) === 0) throw invalid(what, `hostIp "${n.hostIp}" is not an IP address`);
  if (n.hostIp?.includes('%')) throw invalid(what, zoneMessage(n.hostIp));
  const port = n.untrackedUdpPort;
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw invalid(what, `untrackedUdpPort must be an integer from 1 to 65535`);
}

/** node:net's isIP takes "fe80::1%eth0"; iptables and IPAM do not: a host address is an address, without a zone. */
function zoneMessage(hostIp: string): string {
  return `hostIp "${hostIp}" has an IPv6 zone id; a host binding takes the address alone ("${hostIp.slice(0, hostIp.indexOf('%'))}")`;
}

export function validateEndpoint(e: EndpointPorts): void {
  checkId(e?.endpointId, 'endpoint id');
  const what = `endpoint "${e.endpointId}"`;
  checkId(e.networkId, `network id of ${what}`);
  checkBridge(e.bridge, what);
  if (isIP(String(e.containerIp)) === 0) throw invalid(what, `containerIp "${e.containerIp}" is not an IP address`);
  if (!Array.isArray(e.ports)) throw invalid(what, 'ports must be a list of port mappings');
  const seen = new Map<string, number>();
  for (const p of e.ports) {
    const label = `port mapping ${JSON.stringify(p)}`;
    if (p?.proto !== 'tcp' && p?.proto !== 'udp') throw invalid(what, `${label}: proto must be "tcp" or "udp"`);
    if (p.hostPortEnd !== undefined || p.hostPort === 0) {
      throw invalid(what, `${label}: the host port is not chosen yet; pick one (pickFreePort) before publishing`);
    }
    for (const k of ['hostPort', 'containerPort'] as const) {
      if (!Number.isInteger(p[k]) || p[k] < 1 || p[k] > 65535) throw invalid(what, `${label}: ${k} must be an integer from 1 to 65535`);
    }
    const hostIp = p.hostIp ?? '';
    if (hostIp !== '' && isIP(hostIp) === 0) throw invalid(what, `${label}: hostIp "${hostIp}" is not an IP address`);
    if (hostIp.includes('%')) throw invalid(what, `${label}: ${zoneMessage(hostIp)}`);
    // Two mappings of one host address and port would shadow each other.
    const key = `${p.proto}/${hostIp}/${p.hostPort}`;
    if (seen.has(key)) throw invalid(what, `${label}: host port ${p.hostPort}/${p.proto}${hostIp ? ` on ${hostIp}` : ''} is mapped twice`);
    seen.set(key, p.containerPort);
  }
}
