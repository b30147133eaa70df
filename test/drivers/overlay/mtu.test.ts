// The overlay network's MTU as a function of the cluster: the smallest live
// underlay minus the VXLAN overhead, unless --opt mtu fixed it.
import assert from 'node:assert/strict';
import { overlayMtu } from '../../../drivers/overlay/mtu.js';
import type { NetworkRecord } from '../../../core/types.js';
import type { HostRecord } from '../../../cluster/hosts.js';

const net = (driverState: Record<string, string> = {}): NetworkRecord => ({
  id: 'n', name: 'n', driver: 'overlay', scope: 'global', internal: false, ipv6: false, subnets: [], options: {}, labels: {}, driverState, created: '',
});
const host = (hostId: string, underlayMtu: number): HostRecord => ({ hostId, vtep: '192.0.2.1', underlay: 'eth0', underlayMtu, since: '' });

describe('overlay MTU', () => {
  it('is the smallest underlay among the live hosts minus 50', () => {
    assert.equal(overlayMtu(net(), [host('a', 1500), host('b', 1400), host('c', 9000)], 1500), 1350);
    assert.equal(overlayMtu(net(), [host('a', 9000), host('b', 9000)], 9000), 8950);
  });

  it('counts this host\'s underlay as it is now, even before its record says so', () => {
    assert.equal(overlayMtu(net(), [host('a', 1500), host('b', 1500)], 1480), 1430);
    assert.equal(overlayMtu(net(), [], 1500), 1450);
  });

  it('keeps an explicit --opt mtu whatever the hosts have', () => {
    assert.equal(overlayMtu(net({ mtu: '1200' }), [host('a', 1400)], 1500), 1200);
  });
});
