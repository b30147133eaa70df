// An overlay's VXLAN port kept out of conntrack: one raw-table rule per
// network for IPv4, tagged like the network's other rules so it goes with them.
import assert from 'node:assert/strict';
import { networkPlan } from '../../firewall/rules.js';
import { addScript, removeScript, render } from '../../firewall/script.js';
import { validateNetwork } from '../../firewall/validate.js';
import type { NetworkRules } from '../../firewall/types.js';

const n: NetworkRules = { id: 'n1', bridge: 'so-n1', subnets: ['10.1.0.0/24'], icc: true, internal: false, masquerade: true, untrackedUdpPort: 4789 };

describe('firewall: untracked tunnel port', () => {
  it('adds and removes one raw OUTPUT notrack rule for IPv4, none for IPv6 or without the port', () => {
    const v4 = networkPlan(n, 4);
    assert.deepEqual(v4.tables.raw, {
      chains: [],
      rules: [],
      jumps: [{ chain: 'OUTPUT', args: ['-m', 'comment', '--comment', 'strand:n:n1', '-p', 'udp', '--dport', '4789', '-j', 'CT', '--notrack'] }],
    });
    assert.match(render(addScript(v4)), /\*raw\n-A OUTPUT -m comment --comment strand:n:n1 -p udp --dport 4789 -j CT --notrack\nCOMMIT/);
    assert.match(render(removeScript(v4)), /\*raw\n-D OUTPUT -m comment --comment strand:n:n1 -p udp --dport 4789 -j CT --notrack\nCOMMIT/);
    assert.equal(networkPlan(n, 6).tables.raw, undefined);
    const { untrackedUdpPort: _, ...plain } = n;
    assert.equal(networkPlan(plain, 4).tables.raw, undefined);
  });

  it('refuses a port iptables could not take', () => {
    for (const bad of [0, 65536, 1.5]) assert.throws(() => validateNetwork({ ...n, untrackedUdpPort: bad }), /untrackedUdpPort must be an integer from 1 to 65535/);
  });
});
