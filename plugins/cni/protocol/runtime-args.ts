// What a runtime asks of one attachment besides the config: published ports
// (runtimeConfig.portMappings) and a MAC (runtimeConfig.mac, args, CNI_ARGS).
import type { PortBinding } from '../../../core/types.js';
import { getCi, runtimeValue } from './args.js';
import { CniError, CNI_CODES, type CniRequest } from './types.js';

/** runtimeConfig.portMappings, keys matched case-insensitively (containerd sends HostPort). */
export function portMappings(req: CniRequest): PortBinding[] {
  const list = runtimeValue(req.config, 'portMappings');
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new CniError(CNI_CODES.invalidConfig, 'invalid runtimeConfig.portMappings: must be a list');
  return list.map((m, i) => {
    const hostPort = getCi(m, 'hostPort');
    const containerPort = getCi(m, 'containerPort');
    const proto = String(getCi(m, 'protocol') ?? 'tcp').toLowerCase();
    const hostIp = getCi(m, 'hostIP') ?? '';
    const port = (p: unknown): p is number => typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
    if (!port(hostPort) || !port(containerPort) || (proto !== 'tcp' && proto !== 'udp') || typeof hostIp !== 'string') {
      throw new CniError(CNI_CODES.invalidConfig, `invalid runtimeConfig.portMappings[${i}] ${JSON.stringify(m)}: needs hostPort and containerPort 1-65535, protocol tcp or udp`);
    }
    return { proto, hostIp, hostPort, containerPort };
  });
}

/** The MAC the runtime asks for: runtimeConfig.mac, args.cni.mac or CNI_ARGS MAC. */
export function requestedMac(req: CniRequest): string | undefined {
  const v = runtimeValue(req.config, 'mac') ?? getCi(getCi(req.config.args, 'cni'), 'mac') ?? req.args.MAC;
  return typeof v === 'string' && v !== '' ? v : undefined;
}
