// VXLAN checksums checked for real. Between veths a packet's checksum is
// normally never computed (the kernel passes "to be filled in" along and the
// receiver trusts it), so a corrupt checksum would go unseen. With transmit
// checksum offload off on the hosts' underlay links, every outer packet is
// finished in software before it leaves, as a NIC would, and the receiver
// verifies it. strand keeps the vxlan devices' own offload on; its VXLAN
// packets skip conntrack (a raw-table rule), so even a host rule that would
// masquerade them (the case that corrupts outer checksums, see
// drivers/overlay/README.md) never touches them: bulk TCP crosses with no UDP
// checksum error.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestBed, ipJson, run } from '../../../test/support/harness.js';
import { Cluster, waitFor, type Host } from '../../../test/support/cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const PAYLOAD_SERVER = join(here, 'payload-server.js');
const PAYLOAD_CLIENT = join(here, 'payload-client.js');

/** The kernel's count of UDP datagrams dropped for a bad checksum, in a host's namespace. */
function udpChecksumErrors(h: Host): number {
  const rows = run('ip', ['netns', 'exec', h.netns, 'cat', '/proc/net/snmp']).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = rows[0]!.split(/\s+/);
  return Number(rows[1]!.split(/\s+/)[names.indexOf('InCsumErrors')]);
}

/** `ethtool -k` as a map of feature → "on"/"off". */
function features(netns: string, dev: string): Map<string, string> {
  const out = run('ip', ['netns', 'exec', netns, 'ethtool', '-k', dev]).stdout;
  return new Map(out.split('\n').map((l) => /^\s*([\w-]+): (on|off)/.exec(l)).filter((m) => m !== null).map((m) => [m![1]!, m![2]!]));
}

function client(netns: string, args: string[]): string {
  return run('ip', ['netns', 'exec', netns, process.execPath, PAYLOAD_CLIENT, ...args], { allowFail: true }).stdout.trim();
}

/** Echo and HTTP bulk transfers both ways between sandboxes pa (on a) and pb (on b), with no UDP checksum error counted on any host. */
async function bulkTrafficWithoutChecksumErrors(c: Cluster, a: Host, b: Host): Promise<void> {
    const before = c.hosts.map(udpChecksumErrors);
    const [ipA, ipB] = [a.ipOf('pa'), b.ipOf('pb')];
    await waitFor('the payload servers', () => client(b.netnsOf('pb'), ['echo', ipA, '7000', '10']) === 'ok 10' && client(a.netnsOf('pa'), ['echo', ipB, '7000', '10']) === 'ok 10');
    assert.equal(client(a.netnsOf('pa'), ['echo', ipB, '7000', '300000']), 'ok 300000');
    assert.equal(client(b.netnsOf('pb'), ['http', ipA, '8080', String(4 * 1024 * 1024)]), `ok ${4 * 1024 * 1024}`);
    assert.deepEqual(c.hosts.map(udpChecksumErrors), before, 'no VXLAN datagram was dropped for a bad checksum');
}

describe('overlay: VXLAN checksums verified by the receiver', function () {
  this.timeout(120000);
  const bed = useTestBed();

  it('carries bulk TCP with no UDP checksum error when the underlay finishes checksums in software', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    for (const h of c.hosts) {
      run('ip', ['netns', 'exec', h.netns, 'ethtool', '-K', 'eth0', 'tx', 'off']);
      assert.equal(features(h.netns, 'eth0').get('tx-checksumming'), 'off');
    }
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.226.0.0/24', 'sums']);
    const id = (JSON.parse(a.strand(['network', 'inspect', 'sums']).stdout)[0].Id as string).slice(0, 12);
    a.strand(['run', '-d', '--name', 'pa', '--network', 'sums', '--', process.execPath, PAYLOAD_SERVER, '7000', '8080']);
    b.strand(['run', '-d', '--name', 'pb', '--network', 'sums', '--', process.execPath, PAYLOAD_SERVER, '7000', '8080']);
    for (const h of c.hosts) {
      // The vxlan device keeps its offload, and outer UDP checksums are on (the kernel's default).
      assert.equal(features(h.netns, `vx-${id}`).get('tx-checksum-ip-generic'), 'on');
      const vx = ipJson<{ linkinfo: { info_data: { udp_csum?: boolean } } }>(['-d', 'link', 'show', `vx-${id}`], h.netns)[0]!;
      assert.equal(vx.linkinfo.info_data.udp_csum, true);
      // strand's own NAT for the overlay is there, and matches the overlay's addresses only.
      assert.match(run('ip', ['netns', 'exec', h.netns, 'iptables-save', '-t', 'nat']).stdout, /-s 10\.226\.0\.0\/24 .*-j MASQUERADE/);
    }
    await bulkTrafficWithoutChecksumErrors(c, a, b);
  });

  it('keeps its VXLAN packets out of NAT, so a host rule that would masquerade them cannot corrupt their checksums', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    for (const h of c.hosts) run('ip', ['netns', 'exec', h.netns, 'ethtool', '-K', 'eth0', 'tx', 'off']);
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.227.0.0/24', 'natted']);
    a.strand(['run', '-d', '--name', 'pa', '--network', 'natted', '--', process.execPath, PAYLOAD_SERVER, '7000', '8080']);
    b.strand(['run', '-d', '--name', 'pb', '--network', 'natted', '--', process.execPath, PAYLOAD_SERVER, '7000', '8080']);
    const hostile = ['-p', 'udp', '--dport', '4789', '-j', 'MASQUERADE', '--random-fully'];
    for (const h of c.hosts) {
      const raw = run('ip', ['netns', 'exec', h.netns, 'iptables-save', '-t', 'raw']).stdout;
      const rule = raw.split('\n').find((l) => l.startsWith('-A OUTPUT ') && l.includes('strand:n:'));
      assert.ok(rule && /-p udp/.test(rule) && /--dport 4789/.test(rule) && /-j CT --notrack/.test(rule), raw);
      // What kube-proxy's mark or a NAT gateway setup amounts to: every VXLAN packet's source port rewritten.
      run('ip', ['netns', 'exec', h.netns, 'iptables', '-t', 'nat', '-I', 'POSTROUTING', ...hostile]);
    }
    await bulkTrafficWithoutChecksumErrors(c, a, b);
    for (const h of c.hosts) {
      // The masquerade rule never saw a VXLAN packet: conntrack, and with it NAT, passed them by.
      const nat = run('ip', ['netns', 'exec', h.netns, 'iptables', '-t', 'nat', '-vnxL', 'POSTROUTING']).stdout;
      const line = nat.split('\n').find((l) => l.includes('MASQUERADE') && l.includes('dpt:4789'))!;
      assert.equal(Number(line.trim().split(/\s+/)[0]), 0, line);
    }
    // The rule goes with the network.
    for (const [h, sb] of [[a, 'pa'], [b, 'pb']] as const) h.strand(['rm', '-f', sb]);
    a.strand(['network', 'rm', 'natted']);
    await waitFor('the raw rules to go on both hosts', () => c.hosts.every((h) => !run('ip', ['netns', 'exec', h.netns, 'iptables-save', '-t', 'raw']).stdout.includes('strand:')));
  });
});
