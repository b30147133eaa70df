// strand-bridge's own configuration fields, named as the reference bridge
// plugin names them so a user can swap "type": "bridge" for "strand-bridge".
import { validateLinkName } from '../../../netlink/index.js';
import { StrandError } from '../../../common/errors.js';
import { CniError, CNI_CODES, type NetConf } from '../protocol/types.js';

export interface BridgeConf {
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  /** No ipam section, or an empty one: layer 2 only. */
  ipamType?: string;
}

function invalid(msg: string): CniError {
  return new CniError(CNI_CODES.invalidConfig, msg);
}

function bool(conf: NetConf, key: string, fallback: boolean): boolean {
  const v = conf[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalid(`invalid "${key}" ${JSON.stringify(v)}: must be true or false`);
  return v;
}

export function parseBridgeConf(conf: NetConf): BridgeConf {
  const bridge = conf.bridge ?? 'cni0';
  if (typeof bridge !== 'string') throw invalid(`invalid "bridge" ${JSON.stringify(bridge)}: must be an interface name`);
  try {
    validateLinkName(bridge);
  } catch (err) {
    throw invalid(`invalid "bridge": ${(err as StrandError).message}`);
  }
  const mtu = conf.mtu ?? 1500;
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalid(`invalid "mtu" ${JSON.stringify(mtu)}: must be an integer from 68 to 65535`);
  const isDefaultGateway = bool(conf, 'isDefaultGateway', false);
  const out: BridgeConf = {
    bridge,
    // A default gateway must be a gateway first.
    isGateway: bool(conf, 'isGateway', false) || isDefaultGateway,
    isDefaultGateway,
    forceAddress: bool(conf, 'forceAddress', false),
    ipMasq: bool(conf, 'ipMasq', false),
    mtu,
    hairpinMode: bool(conf, 'hairpinMode', false),
    promiscMode: bool(conf, 'promiscMode', false),
  };
  if (out.hairpinMode && out.promiscMode) throw invalid('"hairpinMode" and "promiscMode" cannot both be set');
  const type = conf.ipam?.type;
  if (type !== undefined && type !== '') out.ipamType = type;
  return out;
}
