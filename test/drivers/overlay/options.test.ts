// The overlay driver's --opt keys: what each becomes in the driver state, and
// the errors that name a bad key or value.
import assert from 'node:assert/strict';
import { overlaySettings } from '../../../drivers/overlay/options.js';
import type { NetworkRecord } from '../../../core/types.js';

const net = (options: Record<string, string>): NetworkRecord => ({
  id: 'n', name: 'n', driver: 'overlay', scope: 'global', internal: false, ipv6: false, subnets: [], options, labels: {}, driverState: {}, created: '',
});

describe('overlay options', () => {
  it('keeps an MTU, a requested VNI and steering off under either spelling', () => {
    assert.deepEqual(overlaySettings(net({})), {});
    assert.deepEqual(overlaySettings(net({ mtu: '1400', vni: '5000', steering: 'false' })), { mtu: '1400', requestedVni: '5000', steering: 'false' });
    assert.deepEqual(overlaySettings(net({ 'com.docker.network.driver.mtu': '9000', 'com.docker.network.driver.overlay.vxlanid_list': '7' })), { mtu: '9000', requestedVni: '7' });
    assert.deepEqual(overlaySettings(net({ steering: 'true' })), { steering: 'true' });
  });

  it('names the bad key or value', () => {
    assert.throws(() => overlaySettings(net({ steering: 'off' })), /invalid value "off" for option steering: use true or false/);
    assert.throws(() => overlaySettings(net({ mtu: '40' })), /invalid MTU "40"/);
    assert.throws(() => overlaySettings(net({ vni: '0' })), /invalid VNI "0"/);
    assert.throws(() => overlaySettings(net({ rps: 'true' })), /unknown option "rps" for the overlay driver; known: mtu, vni .*steering/);
  });
});

describe('overlay options: keys of Object.prototype', () => {
  for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    it(`refuses the key ${key} as an unknown option`, () => {
      const options = JSON.parse(`{"${key}":"1"}`) as Record<string, string>;
      assert.ok(Object.hasOwn(options, key));
      assert.throws(() => overlaySettings(net(options)), new RegExp(`unknown option "${key}" for the overlay driver`));
    });
  }
});
