// The overlay driver's --opt keys (short names and Docker's), checked.
import { StrandError } from '../../common/errors.js';
import type { NetworkRecord } from '../../core/types.js';
import { FIRST_VNI, LAST_VNI } from './vni.js';

const KEYS: Record<string, 'mtu' | 'vni'> = {
  mtu: 'mtu',
  'com.docker.network.driver.mtu': 'mtu',
  vni: 'vni',
  'com.docker.network.driver.overlay.vxlanid_list': 'vni',
};

/** Driver state from the options: an explicit MTU and a requested VNI, when given. */
export function overlaySettings(network: NetworkRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(network.options)) {
    const setting = KEYS[key];
    if (!setting) throw new StrandError('invalid', `unknown option "${key}" for the overlay driver; known: mtu, vni (or their com.docker.network.* names)`);
    const n = Number(value);
    if (setting === 'mtu' && (!/^\d+$/.test(value) || n < 68 || n > 65535)) throw new StrandError('invalid', `invalid MTU "${value}" for option ${key}: use 68 to 65535`);
    if (setting === 'vni' && (!/^\d+$/.test(value) || n < 1 || n > LAST_VNI)) throw new StrandError('invalid', `invalid VNI "${value}" for option ${key}: use 1 to ${LAST_VNI} (automatic ones start at ${FIRST_VNI})`);
    out[setting === 'mtu' ? 'mtu' : 'requestedVni'] = String(n);
  }
  return out;
}
