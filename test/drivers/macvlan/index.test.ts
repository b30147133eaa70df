// The macvlan driver's option check refuses keys that name Object.prototype's
// members (issue 13); the key check comes before any look at the links.
import assert from 'node:assert/strict';
import { MacvlanDriver } from '../../../drivers/macvlan/index.js';
import type { NetworkRecord } from '../../../core/types.js';
import type { Netlink } from '../../../netlink/index.js';

const net = (options: Record<string, string>): NetworkRecord => ({
  id: 'n', name: 'n', driver: 'macvlan', scope: 'local', internal: false, ipv6: false, subnets: [], options, labels: {}, driverState: {}, created: '',
});

describe('macvlan options', () => {
  const driver = new MacvlanDriver({} as Netlink);
  for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    it(`refuses the key ${key} as an unknown option`, () => {
      const options = JSON.parse(`{"${key}":"eth0"}`) as Record<string, string>;
      assert.throws(() => driver.validateNetwork(net(options), []), new RegExp(`unknown option "${key}" for the macvlan driver`));
    });
  }
});
