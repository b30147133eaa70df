import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIp } from '../../../../ipam/cidr.js';
import { type RangeConf, chooseStore, describeRange, parseIpamConfig, placeRequests } from '../../../../plugins/cni/ipam/config.js';
import { parseResolvConf } from '../../../../plugins/cni/ipam/resolv.js';
import { CniError, type CniRequest } from '../../../../plugins/cni/protocol/types.js';

type Extra = Omit<Partial<CniRequest>, 'config'> & { config?: Record<string, unknown> };

function req(ipam: unknown, extra: Extra = {}): CniRequest {
  return {
    command: 'ADD',
    containerId: 'c1',
    netns: '/run/netns/x',
    ifName: 'eth0',
    args: {},
    path: [],
    ...extra,
    config: { cniVersion: '1.1.0', name: 'net1', type: 'bridge', ipam, ...extra.config },
  } as CniRequest;
}

const base = { type: 'strand-ipam', dataDir: '/tmp/x' };
const show = (r: RangeConf) => `${formatIp({ family: r.subnet.family, value: r.gateway })} ${describeRange(r)}`;

function fails(ipam: unknown, code: number, msg: RegExp, extra?: Extra): void {
  assert.throws(
    () => parseIpamConfig(req(ipam, extra), { withRequests: true }),
    (e: CniError) => {
      assert.ok(e instanceof CniError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, msg);
      return true;
    },
  );
}

describe('strand-ipam config', () => {
  it('defaults as host-local: gateway network+1, range network+1 to broadcast-1 (v4) or the last address (v6)', () => {
    const c = parseIpamConfig(req({ ...base, ranges: [[{ subnet: '10.9.0.0/24' }], [{ subnet: 'fd00:9::/120' }]] }));
    assert.deepEqual(c.sets.map((s) => s.map(show)), [['10.9.0.1 10.9.0.1-10.9.0.254'], ['fd00:9::1 fd00:9::1-fd00:9::ff']]);
    assert.equal(c.network, 'net1');
    assert.deepEqual(c.routes, []);
    assert.equal(c.dns, undefined);
  });

  it('takes rangeStart, rangeEnd and gateway; the legacy top-level range comes first', () => {
    const c = parseIpamConfig(req({ ...base, subnet: '10.8.0.0/16', rangeStart: '10.8.1.0', rangeEnd: '10.8.1.9', gateway: '10.8.0.254', ranges: [[{ subnet: '10.7.0.0/24' }, { subnet: '10.6.0.0/24', gateway: '10.6.0.9' }]] }));
    assert.deepEqual(c.sets.map((s) => s.map(show)), [['10.8.0.254 10.8.1.0-10.8.1.9'], ['10.7.0.1 10.7.0.1-10.7.0.254', '10.6.0.9 10.6.0.1-10.6.0.254']]);
    assert.equal(c.sets[0]![0]!.where, 'ipam');
    assert.equal(c.sets[1]![1]!.where, 'ipam.ranges[0][1]');
  });

  it('runtimeConfig.ipRanges (any case) comes before the configured ranges', () => {
    const c = parseIpamConfig(req({ ...base, ranges: [[{ subnet: '10.7.0.0/24' }]] }, { config: { runtimeConfig: { IPRanges: [[{ subnet: '10.5.0.0/24' }]] } } }));
    assert.deepEqual(c.sets.map((s) => s[0]!.where), ['runtimeConfig.ipRanges[0][0]', 'ipam.ranges[0][0]']);
  });

  it('unknown fields are ignored', () => {
    parseIpamConfig(req({ ...base, ranges: [[{ subnet: '10.7.0.0/24', future: 1 }]], somethingNew: true }));
  });

  describe('bad configs are code 7 naming the problem', () => {
    const cases: [string, unknown, RegExp][] = [
      ['no ipam section', undefined, /no "ipam" section/],
      ['no ranges', { ...base }, /needs "ranges"/],
      ['ranges not a list', { ...base, ranges: { subnet: '10.0.0.0/24' } }, /ipam\.ranges must be a list/],
      ['a set not a list', { ...base, ranges: [{ subnet: '10.0.0.0/24' }] }, /ipam\.ranges\[0\] must be a non-empty list/],
      ['an empty set', { ...base, ranges: [[]] }, /ipam\.ranges\[0\] must be a non-empty list/],
      ['a range not an object', { ...base, ranges: [['10.0.0.0/24']] }, /ipam\.ranges\[0\]\[0\] must be an object/],
      ['no subnet', { ...base, ranges: [[{ rangeStart: '10.0.0.2' }]] }, /ipam\.ranges\[0\]\[0\]\.subnet is missing/],
      ['subnet a number', { ...base, ranges: [[{ subnet: 10 }]] }, /subnet must be a string, got 10/],
      ['a CIDR that does not parse', { ...base, ranges: [[{ subnet: '10.0.0.300/24' }]] }, /ipam\.ranges\[0\]\[0\]\.subnet "10\.0\.0\.300\/24": octet 300/],
      ['no prefix', { ...base, ranges: [[{ subnet: '10.0.0.0' }]] }, /missing "\/prefix-length"/],
      ['prefix too long', { ...base, ranges: [[{ subnet: '10.0.0.0/33' }]] }, /prefix length must be a number 0-32/],
      ['host bits set', { ...base, ranges: [[{ subnet: '10.0.0.1/24' }]] }, /host bits are set; the network is 10\.0\.0\.0\/24/],
      ['garbage', { ...base, ranges: [[{ subnet: 'not-a-cidr/x' }]] }, /subnet "not-a-cidr\/x"/],
      ['/31 too small', { ...base, ranges: [[{ subnet: '10.0.0.0/31' }]] }, /too small to allocate from/],
      ['/127 too small', { ...base, ranges: [[{ subnet: 'fd00::/127' }]] }, /too small to allocate from/],
      ['rangeStart outside the subnet', { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.1.5' }]] }, /rangeStart 10\.0\.1\.5 is not in subnet 10\.0\.0\.0\/24/],
      ['rangeEnd of another family', { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeEnd: 'fd00::1' }]] }, /rangeEnd fd00::1 is not in subnet/],
      ['rangeEnd the broadcast address', { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeEnd: '10.0.0.255' }]] }, /rangeEnd 10\.0\.0\.255 is the broadcast address/],
      ['rangeStart after rangeEnd', { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.9', rangeEnd: '10.0.0.3' }]] }, /rangeStart 10\.0\.0\.9 is after rangeEnd 10\.0\.0\.3/],
      ['a bad rangeStart', { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0' }]] }, /rangeStart/],
      ['gateway outside', { ...base, ranges: [[{ subnet: '10.0.0.0/24', gateway: '10.1.0.1' }]] }, /gateway 10\.1\.0\.1 is not in subnet/],
      ['a range of only the gateway', { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.1', rangeEnd: '10.0.0.1' }]] }, /holds only the gateway/],
      ['mixed families in a set', { ...base, ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] }, /range set 0 mixes address families/],
      ['overlapping sets', { ...base, ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.0/25' }]] }, /ipam\.ranges\[0\]\[0\] \(10\.0\.0\.1-10\.0\.0\.254\) overlaps ipam\.ranges\[1\]\[0\]/],
      ['legacy subnet overlapping ranges', { ...base, subnet: '10.0.0.0/16', ranges: [[{ subnet: '10.0.5.0/24' }]] }, /overlaps/],
      ['two ranges sharing a subnet', { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeEnd: '10.0.0.9' }, { subnet: '10.0.0.0/24', rangeStart: '10.0.0.10' }]] }, /share subnet 10\.0\.0\.0\/24/],
      ['nested subnets with disjoint ranges', { ...base, ranges: [[{ subnet: '10.0.0.0/16', rangeEnd: '10.0.0.9' }], [{ subnet: '10.0.1.0/24' }]] }, /subnet 10\.0\.0\.0\/16 overlaps ipam\.ranges\[1\]\[0\] subnet 10\.0\.1\.0\/24/],
      ['routes not a list', { ...base, ranges: [[{ subnet: '10.0.0.0/24' }]], routes: { dst: '0.0.0.0/0' } }, /ipam\.routes must be a list/],
      ['a route without dst', { ...base, ranges: [[{ subnet: '10.0.0.0/24' }]], routes: [{ gw: '10.0.0.1' }] }, /ipam\.routes\[0\]\.dst is missing/],
      ['a route with a bad dst', { ...base, ranges: [[{ subnet: '10.0.0.0/24' }]], routes: [{ dst: 'default' }] }, /ipam\.routes\[0\]\.dst "default"/],
      ['a route with a bad gw', { ...base, ranges: [[{ subnet: '10.0.0.0/24' }]], routes: [{ dst: '0.0.0.0/0', gw: '10.0.0' }] }, /ipam\.routes\[0\]\.gw "10\.0\.0"/],
      ['store and dataDir', { ...base, store: 'local:///tmp/y', ranges: [[{ subnet: '10.0.0.0/24' }]] }, /both "store" and "dataDir"/],
      ['a relative dataDir', { type: 'strand-ipam', dataDir: 'var/lib', ranges: [[{ subnet: '10.0.0.0/24' }]] }, /dataDir "var\/lib" must be an absolute path/],
      ['a bad store URL', { type: 'strand-ipam', store: 'mongo://x', ranges: [[{ subnet: '10.0.0.0/24' }]] }, /ipam: store URL/],
      ['dataDir a number', { type: 'strand-ipam', dataDir: 5, ranges: [[{ subnet: '10.0.0.0/24' }]] }, /ipam\.dataDir must be a string/],
    ];
    for (const [what, ipam, msg] of cases) it(what, () => fails(ipam, 7, msg));
  });

  it('a resolvConf that cannot be read is code 5 naming the file', () => {
    fails({ ...base, ranges: [[{ subnet: '10.0.0.0/24' }]], resolvConf: '/nonexistent/resolv.conf' }, 5, /cannot read \/nonexistent\/resolv\.conf/);
  });

  it('a resolvConf that is not a regular file of at most 64 KiB is code 7 saying why (issue 13)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-resolv-'));
    const ranges = [[{ subnet: '10.0.0.0/24' }]];
    try {
      const fifo = join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      // Opened without blocking: nobody writes to the FIFO, and the check does not hang.
      fails({ ...base, ranges, resolvConf: fifo }, 7, /^ipam\.resolvConf: .*\/fifo is a FIFO, not a regular file; point resolvConf at a resolv\.conf file$/);
      fails({ ...base, ranges, resolvConf: dir }, 7, /is a directory, not a regular file/);
      fails({ ...base, ranges, resolvConf: '/dev/null' }, 7, /\/dev\/null is a character device, not a regular file/);
      fails({ ...base, ranges, resolvConf: '/proc/self/environ' }, 7, /\/proc\/self\/environ is in \/proc, a kernel file, not a regular file/);
      if (existsSync('/sys/kernel/mm/transparent_hugepage/enabled')) fails({ ...base, ranges, resolvConf: '/sys/kernel/mm/transparent_hugepage/enabled' }, 7, /is in \/sys, a kernel file/);
      const big = join(dir, 'big.conf');
      writeFileSync(big, 'nameserver 10.0.0.53\n'.padEnd((64 << 10) + 1, '#'));
      fails({ ...base, ranges, resolvConf: big }, 7, /big\.conf is 65537 bytes; at most 65536 \(64 KiB\) are read/);
      // Exactly 64 KiB is read, through a symlink as /etc/resolv.conf often is.
      const edge = join(dir, 'edge.conf');
      writeFileSync(edge, 'nameserver 10.0.0.53\n'.padEnd(64 << 10, '#'));
      const link = join(dir, 'link.conf');
      symlinkSync(edge, link);
      assert.deepEqual(parseIpamConfig(req({ ...base, ranges, resolvConf: link })).dns, { nameservers: ['10.0.0.53'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads resolvConf into dns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-resolv-'));
    try {
      const file = join(dir, 'resolv.conf');
      writeFileSync(file, '# comment\nnameserver 10.0.0.53\nnameserver fd00::53 # trailing\nsearch a.example b.example\ndomain example\noptions ndots:2 edns0\noptions rotate\nbogus\n');
      const c = parseIpamConfig(req({ ...base, ranges: [[{ subnet: '10.0.0.0/24' }]], resolvConf: file }));
      assert.deepEqual(c.dns, { nameservers: ['10.0.0.53', 'fd00::53'], search: ['a.example', 'b.example'], domain: 'example', options: ['ndots:2', 'edns0', 'rotate'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(parseResolvConf('search a\nsearch b c\n'), { search: ['b', 'c'] });
    assert.deepEqual(parseResolvConf(''), {});
  });

  it('store choice: dataDir is a local store there, store a URL (shared stores use the global space), default $STRAND_STORE or /var/lib/strand', () => {
    assert.deepEqual(chooseStore({ dataDir: '/var/lib/cni/networks' }), { url: 'local:///var/lib/cni/networks', space: 'local' });
    assert.deepEqual(chooseStore({ store: 'etcd://10.0.0.1:2379' }), { url: 'etcd://10.0.0.1:2379', space: 'global' });
    assert.deepEqual(chooseStore({ store: 'redis://10.0.0.1:6379' }), { url: 'redis://10.0.0.1:6379', space: 'global' });
    assert.deepEqual(chooseStore({ store: 'local:///srv/s' }), { url: 'local:///srv/s', space: 'local' });
    assert.deepEqual(chooseStore({}, {}), { url: 'local:///var/lib/strand', space: 'local' });
    assert.deepEqual(chooseStore({}, { STRAND_STORE: 'redis://h:1' }), { url: 'redis://h:1', space: 'global' });
    assert.deepEqual(chooseStore({}, { STRAND_STORE: '' }), { url: 'local:///var/lib/strand', space: 'local' });
  });

  describe('requested IPs', () => {
    const two = { ...base, ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20' }], [{ subnet: 'fd00::/64' }]] };
    it('come from CNI_ARGS IP (comma list), args.cni.ips and runtimeConfig.ips, prefix ignored, duplicates merged', () => {
      const c = parseIpamConfig(req(two, { args: { IP: '10.0.0.12' }, config: { args: { cni: { ips: ['fd00::5/64'] } }, runtimeConfig: { IPs: ['10.0.0.12/24'] } } }), { withRequests: true });
      assert.deepEqual(c.requested.map(formatIp), ['10.0.0.12', 'fd00::5']);
      const placed = placeRequests(c);
      assert.deepEqual([...placed.entries()].map(([i, p]) => [i, formatIp(p.ip), p.range.where]), [[0, '10.0.0.12', 'ipam.ranges[0][0]'], [1, 'fd00::5', 'ipam.ranges[1][0]']]);
      const list = parseIpamConfig(req(two, { args: { IP: '10.0.0.11,fd00::9' } }), { withRequests: true });
      assert.deepEqual(list.requested.map(formatIp), ['10.0.0.11', 'fd00::9']);
    });
    it('are refused outside every range, on the gateway, two in one set, or malformed', () => {
      const place = (extra: Extra) => placeRequests(parseIpamConfig(req(two, extra), { withRequests: true }));
      assert.throws(() => place({ args: { IP: '10.0.0.30' } }), (e: CniError) => e.code === 7 && /requested IP 10\.0\.0\.30 is in no range of network "net1"/.test(e.message));
      assert.throws(() => place({ args: { IP: '10.0.0.11,10.0.0.12' } }), (e: CniError) => e.code === 7 && /both in range set 0/.test(e.message));
      assert.throws(() => place({ args: { IP: 'fd00::1' } }), (e: CniError) => e.code === 7 && /is the gateway of ipam\.ranges\[1\]\[0\]/.test(e.message));
      assert.throws(() => place({ args: { IP: '10.0.0.x' } }), (e: CniError) => e.code === 4 && /CNI_ARGS IP/.test(e.message));
      assert.throws(() => place({ config: { runtimeConfig: { ips: '10.0.0.11' } } }), (e: CniError) => e.code === 7 && /runtimeConfig\.ips must be a list/.test(e.message));
      assert.throws(() => place({ config: { args: { cni: { ips: [5] } } } }), (e: CniError) => e.code === 7 && /args\.cni\.ips\[0\]/.test(e.message));
    });
  });
});
