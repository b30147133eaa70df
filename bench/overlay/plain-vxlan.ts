// The overlay benchmark's peer: the plainest VXLAN data path Linux offers,
// laid out by hand with iproute2 the way flannel's vxlan backend and Docker's
// overlay driver lay theirs out. On each of two hosts: a bridge, a vxlan
// device on it (UDP 4789, learning off, the other host as the one flooding
// destination) and a namespace on a veth to the bridge. No agent, no rules of
// its own: what any VXLAN overlay costs here, against which strand's is
// measured. Everything lives in the hosts' and the test bed's namespaces.
import type { TestBed } from '../../test/support/harness.js';
import { run } from '../../test/support/harness.js';
import type { Host } from '../../test/support/cluster.js';

const VNI = '42'; // strand's VNIs start at 4096
const SUBNET = '10.99.0';

export interface PlainVxlan {
  /** The namespace on host A (the iperf3 server) and its address. */
  serverNs: string;
  serverIp: string;
  /** The namespace on host B (the client). */
  clientNs: string;
}

export function buildPlainVxlan(bed: TestBed, a: Host, b: Host, mtu: number): PlainVxlan {
  const hosts = [a, b] as const;
  const spaces = hosts.map((_, i) => bed.netns(`pv${i}`).name);
  hosts.forEach((h, i) => {
    const other = hosts[1 - i]!;
    const ip = (...args: string[]) => run('ip', ['-n', h.netns, ...args]);
    ip('link', 'add', 'pvbr', 'mtu', String(mtu), 'type', 'bridge');
    ip('link', 'add', 'pvvx', 'mtu', String(mtu), 'type', 'vxlan', 'id', VNI, 'local', h.ip, 'dev', 'eth0', 'dstport', '4789', 'nolearning');
    ip('link', 'set', 'pvvx', 'master', 'pvbr', 'up');
    ip('link', 'set', 'pvbr', 'up');
    run('bridge', ['-n', h.netns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'pvvx', 'dst', other.ip]);
    // The peer's MTU too: a veth's mtu applies to its first end only.
    ip('link', 'add', 'pvh', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', spaces[i]!, 'mtu', String(mtu));
    ip('link', 'set', 'pvh', 'master', 'pvbr', 'up');
    const inside = (...args: string[]) => run('ip', ['-n', spaces[i]!, ...args]);
    inside('addr', 'add', `${SUBNET}.${i + 1}/24`, 'dev', 'eth0');
    inside('link', 'set', 'eth0', 'up');
    inside('link', 'set', 'lo', 'up');
  });
  return { serverNs: spaces[0]!, serverIp: `${SUBNET}.1`, clientNs: spaces[1]! };
}
