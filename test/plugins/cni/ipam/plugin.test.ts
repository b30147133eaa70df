import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from '../../../../ipam/index.js';
import { toCniError } from '../../../../plugins/cni/protocol/errors.js';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from '../../../../plugins/cni/ipam/plugin.js';
import type { Attachment, CniRequest, CniResult } from '../../../../plugins/cni/protocol/types.js';
import { openStore } from '../../../../store/index.js';

describe('strand-ipam in process', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strand-cni-ipam-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function req(containerId: string, ipam: Record<string, unknown>, extra: { name?: string; ifName?: string; args?: Record<string, string>; prevResult?: CniResult; valid?: Attachment[]; cniVersion?: string } = {}): CniRequest {
    const r: CniRequest = {
      command: 'ADD',
      containerId,
      netns: '/run/netns/x',
      ifName: extra.ifName ?? 'eth0',
      args: extra.args ?? {},
      path: [],
      config: { cniVersion: extra.cniVersion ?? '1.1.0', name: extra.name ?? 'net1', type: 'bridge', ipam: { type: 'strand-ipam', dataDir: dir, ...ipam } },
    };
    if (extra.prevResult) r.config.prevResult = extra.prevResult;
    if (extra.valid) r.validAttachments = extra.valid;
    return r;
  }

  const v4 = (subnet: string, more: Record<string, unknown> = {}) => ({ ranges: [[{ subnet, ...more }]] });
  const addr = async (p: Promise<CniResult>) => (await p).ips!.map((i) => i.address);

  async function rejects(p: Promise<unknown>, code: number, msg: RegExp): Promise<void> {
    await assert.rejects(p, (e: unknown) => {
      const c = toCniError(e);
      assert.equal(c.code, code, c.message);
      assert.match(c.message, msg);
      return true;
    });
  }

  async function pools(): Promise<{ subnet: string; allocated: number }[]> {
    const store = await openStore(`local://${dir}`);
    try {
      const ipam = new Ipam({ store });
      const out = [];
      for (const p of await ipam.listPools('local')) out.push({ subnet: p.subnet, allocated: (await ipam.usage(p.id)).allocated });
      return out;
    } finally {
      await store.close();
    }
  }

  it('ADD returns one address per range set with the gateway, routes and dns, and no interfaces', async () => {
    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 10.60.0.53\nsearch svc.example\n');
    const ipam = { ranges: [[{ subnet: '10.60.0.0/24' }], [{ subnet: 'fd00:60::/64', gateway: 'fd00:60::fe' }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '10.61.0.0/16', gw: '10.60.0.9' }], resolvConf: resolv };
    const r = await ipamAdd(req('c1', ipam, { cniVersion: '1.0.0' }));
    assert.deepEqual(r, {
      cniVersion: '1.0.0',
      ips: [
        { address: '10.60.0.2/24', gateway: '10.60.0.1' },
        // With the gateway elsewhere, network+1 is handed out (host-local does the same).
        { address: 'fd00:60::1/64', gateway: 'fd00:60::fe' },
      ],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '10.61.0.0/16', gw: '10.60.0.9' }],
      dns: { nameservers: ['10.60.0.53'], search: ['svc.example'] },
    });
  });

  it('hands out addresses round-robin after the last one, as host-local, then reports the exhausted range set', async () => {
    const ipam = v4('10.98.0.0/29');
    assert.deepEqual(await addr(ipamAdd(req('a', ipam))), ['10.98.0.2/29']);
    assert.deepEqual(await addr(ipamAdd(req('b', ipam))), ['10.98.0.3/29']);
    await ipamDel(req('a', ipam));
    assert.deepEqual(await addr(ipamAdd(req('c', ipam))), ['10.98.0.4/29']);
    assert.deepEqual(await addr(ipamAdd(req('d', ipam))), ['10.98.0.5/29']);
    assert.deepEqual(await addr(ipamAdd(req('e', ipam))), ['10.98.0.6/29']);
    assert.deepEqual(await addr(ipamAdd(req('f', ipam))), ['10.98.0.2/29']);
    await rejects(ipamAdd(req('g', ipam)), 999, /^no IP addresses available in range set: 10\.98\.0\.1-10\.98\.0\.6 \(network "net1"\)$/);
    await rejects(ipamStatus(req('', ipam)), 50, /no IP addresses available in range set: 10\.98\.0\.1-10\.98\.0\.6/);
    await ipamDel(req('c', ipam));
    await ipamStatus(req('', ipam));
  });

  it('moves to the next range of a set when one is full', async () => {
    const ipam = { ranges: [[{ subnet: '10.70.0.0/30' }, { subnet: '10.71.0.0/30' }]] };
    assert.deepEqual(await addr(ipamAdd(req('a', ipam))), ['10.70.0.2/30']);
    assert.deepEqual(await addr(ipamAdd(req('b', ipam))), ['10.71.0.2/30']);
    await rejects(ipamAdd(req('c', ipam)), 999, /range set: 10\.70\.0\.1-10\.70\.0\.2, 10\.71\.0\.1-10\.71\.0\.2/);
  });

  it('refuses a second ADD of the same attachment (host-local: duplicate allocation) but takes another ifname', async () => {
    const ipam = v4('10.72.0.0/24');
    await ipamAdd(req('a', ipam));
    await rejects(ipamAdd(req('a', ipam)), 999, /^duplicate allocation is not allowed: container a \(eth0\) already holds 10\.72\.0\.2 on network "net1"; DEL it first$/);
    assert.deepEqual(await addr(ipamAdd(req('a', ipam, { ifName: 'net1' }))), ['10.72.0.3/24']);
  });

  it('gives a requested address from CNI_ARGS and refuses one that is taken or outside the range', async () => {
    const ipam = v4('10.73.0.0/24', { rangeStart: '10.73.0.100', rangeEnd: '10.73.0.110' });
    assert.deepEqual(await addr(ipamAdd(req('a', ipam, { args: { IgnoreUnknown: '1', IP: '10.73.0.105', K8S_POD_NAME: 'p' } }))), ['10.73.0.105/24']);
    await rejects(ipamAdd(req('b', ipam, { args: { IP: '10.73.0.105' } })), 999, /10\.73\.0\.105 .* already allocated to container a \(eth0\)/);
    await rejects(ipamAdd(req('b', ipam, { args: { IP: '10.73.0.5' } })), 7, /requested IP 10\.73\.0\.5 is in no range/);
    await rejects(ipamAdd(req('b', ipam, { args: { FOO: '1' } })), 2, /unknown CNI_ARGS key "FOO"/);
    // Next-free is not moved by a requested address.
    assert.deepEqual(await addr(ipamAdd(req('c', ipam))), ['10.73.0.100/24']);
  });

  it('a failed set frees what earlier sets took', async () => {
    const ipam = { ranges: [[{ subnet: '10.74.0.0/24' }], [{ subnet: '10.75.0.0/30' }]] };
    // A /30 with its gateway on .1 has one address to give.
    assert.deepEqual(await addr(ipamAdd(req('a', ipam))), ['10.74.0.2/24', '10.75.0.2/30']);
    await rejects(ipamAdd(req('b', ipam)), 999, /no IP addresses available in range set: 10\.75\.0\.1-10\.75\.0\.2/);
    const used = Object.fromEntries((await pools()).map((p) => [p.subnet, p.allocated]));
    assert.deepEqual(used, { '10.74.0.0/24': 1, '10.75.0.0/30': 1 });
  });

  it('DEL frees only this network, is idempotent, and works when the ranges no longer parse', async () => {
    const a = v4('10.76.0.0/24');
    const b = v4('10.77.0.0/24');
    await ipamAdd(req('x', a, { name: 'neta' }));
    await ipamAdd(req('x', b, { name: 'netb' }));
    await ipamDel(req('x', { ranges: [[{ subnet: 'garbage' }]] }, { name: 'neta' }));
    await ipamDel(req('x', a, { name: 'neta' }));
    await ipamDel(req('never-added', a, { name: 'neta' }));
    const used = Object.fromEntries((await pools()).map((p) => [p.subnet, p.allocated]));
    assert.deepEqual(used, { '10.76.0.0/24': 0, '10.77.0.0/24': 1 });
    // The freed address is handed out again once the cursor wraps; a new ADD of x works.
    assert.deepEqual(await addr(ipamAdd(req('x', a, { name: 'neta' }))), ['10.76.0.3/24']);
  });

  it('CHECK passes while the attachment holds its addresses and fails after DEL or for a foreign prevResult address', async () => {
    const ipam = v4('10.78.0.0/24');
    const r = await ipamAdd(req('a', ipam));
    await ipamCheck(req('a', ipam, { prevResult: r }));
    // An address outside this network's ranges is another plugin's business.
    await ipamCheck(req('a', ipam, { prevResult: { cniVersion: '1.1.0', ips: [...r.ips!, { address: '192.168.9.9/24' }] } }));
    await rejects(ipamCheck(req('a', ipam, { prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.78.0.77/24' }] } })), 999, /prevResult address 10\.78\.0\.77\/24 is not allocated to container a \(eth0\)/);
    await ipamDel(req('a', ipam));
    await rejects(ipamCheck(req('a', ipam, { prevResult: r })), 999, /container a \(eth0\) holds no address in range set 0/);
  });

  it('GC: no list frees nothing, a list keeps its attachments, an empty list frees the whole network and no other', async () => {
    const a = v4('10.79.0.0/24');
    const other = v4('10.80.0.0/24');
    for (const id of ['k1', 'k2', 's1', 's2']) await ipamAdd(req(id, a));
    await ipamAdd(req('k1', a, { ifName: 'net1' }));
    await ipamAdd(req('o1', other, { name: 'other' }));
    const allocated = async () => Object.fromEntries((await pools()).map((p) => [p.subnet, p.allocated]));

    await ipamGc(req('', a));
    assert.deepEqual(await allocated(), { '10.79.0.0/24': 5, '10.80.0.0/24': 1 });
    await ipamGc(req('', a, { valid: [{ containerId: 'k1', ifName: 'eth0' }, { containerId: 'k2', ifName: 'eth0' }] }));
    assert.deepEqual(await allocated(), { '10.79.0.0/24': 2, '10.80.0.0/24': 1 });
    await ipamCheck(req('k1', a, { prevResult: { cniVersion: '1.1.0' } }));
    await rejects(ipamCheck(req('k1', a, { ifName: 'net1', prevResult: { cniVersion: '1.1.0' } })), 999, /holds no address/);
    await ipamGc(req('', a, { valid: [] }));
    assert.deepEqual(await allocated(), { '10.79.0.0/24': 0, '10.80.0.0/24': 1 });
  });

  it('a bad config writes nothing', async () => {
    await rejects(ipamAdd(req('a', { ranges: [[{ subnet: '10.81.0.0/24' }], [{ subnet: '10.81.0.0/16' }]] })), 7, /overlaps/);
    await rejects(ipamAdd(req('a', { ranges: [[{ subnet: '10.81.0.0/24' }]], routes: [{ dst: 'x' }] })), 7, /routes\[0\]\.dst/);
    assert.deepEqual(await pools(), []);
  });

  it('a subnet another network holds in the same store is code 7 naming that network', async () => {
    await ipamAdd(req('a', v4('10.82.0.0/24'), { name: 'first' }));
    await rejects(ipamAdd(req('b', v4('10.82.0.0/25'), { name: 'second' })), 7, /subnet 10\.82\.0\.0\/25 overlaps pool local-[0-9a-f]+ \(10\.82\.0\.0\/24\) of CNI network "first"/);
  });

  it('a changed range replaces the network\'s old pool once it is empty, and is refused while it holds addresses', async () => {
    await ipamAdd(req('a', v4('10.83.0.0/24')));
    await rejects(ipamAdd(req('b', v4('10.83.0.0/24', { rangeStart: '10.83.0.50' }))), 7, /changed ipam\.ranges\[0\]\[0\] .* still holds 1 address\(es\); DEL those containers first/);
    await ipamDel(req('a', v4('10.83.0.0/24')));
    assert.deepEqual(await addr(ipamAdd(req('b', v4('10.83.0.0/24', { rangeStart: '10.83.0.50' })))), ['10.83.0.50/24']);
    assert.deepEqual(await pools(), [{ subnet: '10.83.0.0/24', allocated: 1 }]);
  });

  it('concurrent ADDs with their own store handles get distinct addresses and create one pool', async () => {
    const ipam = v4('10.84.0.0/24');
    const got = await Promise.all(Array.from({ length: 24 }, (_, i) => addr(ipamAdd(req(`c${i}`, ipam)))));
    const flat = got.flat();
    assert.equal(new Set(flat).size, 24);
    assert.deepEqual(await pools(), [{ subnet: '10.84.0.0/24', allocated: 24 }]);
  });

  it('STATUS is 50 when the store cannot be opened', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    await rejects(ipamStatus(req('', { ranges: [[{ subnet: '10.85.0.0/24' }]], dataDir: join(file, 'sub') })), 50, /store local:\/\/.*not-a-dir\/sub is unreachable/);
  });
});
