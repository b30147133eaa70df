// The bridge driver's option check refuses keys that name Object.prototype's
// members (issue 13): they are unknown options, not settings.
import assert from 'node:assert/strict';
import { bridgeSettings } from '../../../drivers/bridge/options.js';
import type { NetworkRecord } from '../../../core/types.js';

// JSON.parse makes __proto__ an own key, as a record read from the store or a request would.
const net = (optionsJson: string): NetworkRecord => ({
  id: 'abcdef0123456789', name: 'n', driver: 'bridge', scope: 'local', internal: false, ipv6: false, subnets: [],
  options: JSON.parse(optionsJson) as Record<string, string>, labels: {}, driverState: {}, created: '',
});

describe('bridge options', () => {
  it('keeps a known option', () => {
    assert.equal(bridgeSettings(net('{"mtu":"1400"}'), []).mtu, '1400');
  });

  for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
    it(`refuses the key ${key} as an unknown option`, () => {
      const n = net(JSON.stringify({ [key]: 'x' }));
      assert.ok(Object.hasOwn(n.options, key));
      assert.throws(() => bridgeSettings(n, []), new RegExp(`unknown option "${key}" for the bridge driver; known: `));
    });
  }
});
