// The overlay driver's --opt keys (short names and Docker's), checked.
import { StrandError } from '../../common/errors.js';
import type { NetworkRecord } from '../../core/types.js';
import { FIRST_VNI, LAST_VNI } from './vni.js';

const KEYS: Record<string, 'mtu' | 'vni' | 'steering'> = {
  mtu: 'mtu',
  'com.docker.network.driver.mtu': 'mtu',
  vni: 'vni',
  'com.docker.network.driver.overlay.vxlanid_list': 'vni',
  steering: 'steering',
};

/** Driver state from the options: an explicit MTU, a requested VNI and cross-CPU steering off, when given. */
export function overlaySettings(network: NetworkRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(network.options)) {
    // Own keys only: a key such as __proto__ or toString must not find Object.prototype's.
    const setting = Object.hasOwn(KEYS, key) ? KEYS[key] : undefined;
    if (!setting) throw new StrandError('invalid', `unknown option "${key}" for the overlay driver; known: mtu, vni (or their com.docker.network.* names), steering`);
    if (setting === 'steering') {
      if (!['true', 'false'].includes(value)) throw new StrandError('invalid', `invalid value "${value}" for option ${key}: use true or false`);
      out.steering = value;
      continue;
    }
    const n = Number(value);
    if (setting === 'mtu' && (!/^\d+$/.test(value) || n < 68 || n > 65535)) throw new StrandError('invalid', `invalid MTU "${value}" for option ${key}: use 68 to 65535`);
    if (setting === 'vni' && (!/^\d+$/.test(value) || n < 1 || n > LAST_VNI)) throw new StrandError('invalid', `invalid VNI "${value}" for option ${key}: use 1 to ${LAST_VNI} (automatic ones start at ${FIRST_VNI})`);
    out[setting === 'mtu' ? 'mtu' : 'requestedVni'] = String(n);
  }
  return out;
}
