// The bridge driver's --opt keys: Docker's names and short ones, checked, with
// clear errors for unknown keys and bad values.
import { isIPv4 } from 'node:net';
import { StrandError } from '../../common/errors.js';
import { validateLinkName } from '../../netlink/index.js';
import { bridgeName } from '../../core/ids.js';
import type { NetworkRecord } from '../../core/types.js';

/** Option key (either spelling) → the setting it controls. */
const KEYS: Record<string, keyof BridgeSettings> = {
  'com.docker.network.bridge.name': 'bridge',
  'bridge.name': 'bridge',
  'com.docker.network.driver.mtu': 'mtu',
  mtu: 'mtu',
  'com.docker.network.bridge.enable_icc': 'icc',
  icc: 'icc',
  'com.docker.network.bridge.enable_ip_masquerade': 'masquerade',
  masquerade: 'masquerade',
  'com.docker.network.bridge.host_binding_ipv4': 'hostBindingIpv4',
  host_binding_ipv4: 'hostBindingIpv4',
  // The reference CNI bridge plugin's settings (hairpinMode, forceAddress, promiscMode).
  hairpin: 'hairpin',
  force_address: 'forceAddress',
  promisc: 'promisc',
};

export interface BridgeSettings {
  bridge: string;
  mtu: string;
  icc: string;
  masquerade: string;
  hostBindingIpv4: string;
  /** Set only when asked: hairpin on the ports (default on), replacing other addresses on the bridge, promiscuous bridge. */
  hairpin?: string;
  forceAddress?: string;
  promisc?: string;
}

function bool(key: string, value: string): string {
  if (!['true', 'false', '1', '0'].includes(value)) throw new StrandError('invalid', `invalid value "${value}" for option ${key}: use true or false`);
  return value === 'true' || value === '1' ? 'true' : 'false';
}

/** The settings a network's options ask for, with defaults, checked against the other networks. */
export function bridgeSettings(network: NetworkRecord, existing: NetworkRecord[]): BridgeSettings {
  const s: BridgeSettings = { bridge: bridgeName(network.id), mtu: '1500', icc: 'true', masquerade: 'true', hostBindingIpv4: '' };
  for (const [key, value] of Object.entries(network.options)) {
    // Own keys only: a key such as __proto__ or toString must not find Object.prototype's.
    const setting = Object.hasOwn(KEYS, key) ? KEYS[key] : undefined;
    if (!setting) {
      throw new StrandError('invalid', `unknown option "${key}" for the bridge driver; known: ${Object.keys(KEYS).filter((k) => !k.startsWith('com.')).join(', ')} (or their com.docker.network.* names)`);
    }
    switch (setting) {
      case 'bridge':
        validateLinkName(value);
        s.bridge = value;
        break;
      case 'mtu': {
        const mtu = Number(value);
        if (!/^\d+$/.test(value) || mtu < 68 || mtu > 65535) throw new StrandError('invalid', `invalid MTU "${value}" for option ${key}: use 68 to 65535`);
        s.mtu = String(mtu);
        break;
      }
      case 'icc':
      case 'masquerade':
      case 'hairpin':
      case 'forceAddress':
      case 'promisc':
        s[setting] = bool(key, value);
        break;
      case 'hostBindingIpv4':
        if (!isIPv4(value)) throw new StrandError('invalid', `invalid IPv4 address "${value}" for option ${key}`);
        s.hostBindingIpv4 = value;
        break;
    }
  }
  const twin = existing.find((n) => n.driver === 'bridge' && n.driverState.bridge === s.bridge);
  if (twin) throw new StrandError('exists', `bridge "${s.bridge}" is already used by network "${twin.name}"; choose another bridge.name`);
  return s;
}
