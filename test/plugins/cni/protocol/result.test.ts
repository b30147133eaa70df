import assert from 'node:assert/strict';
import { formatResult, parseResult } from '../../../../plugins/cni/protocol/result.js';
import { CniError, CNI_VERSIONS, type CniResult } from '../../../../plugins/cni/protocol/types.js';
import { compareVersions, negotiateVersion } from '../../../../plugins/cni/protocol/version.js';

const full: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '02:00:00:00:00:01', mtu: 1500 },
    { name: 'veth1', mac: '02:00:00:00:00:02', sandbox: '' },
    { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/x', mtu: 1500, socketPath: '/s', pciID: '0000:00:01.0' },
  ],
  ips: [
    { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 2 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 2 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }],
  dns: { nameservers: ['10.1.0.1'], domain: 'example', search: ['a.example'], options: ['ndots:2'] },
};

describe('cni results', () => {
  it('prints 1.1.0 with every field and no ips[].version', () => {
    assert.deepEqual(formatResult(full, '1.1.0'), {
      cniVersion: '1.1.0',
      interfaces: [
        { name: 'cni0', mac: '02:00:00:00:00:01', mtu: 1500 },
        { name: 'veth1', mac: '02:00:00:00:00:02', sandbox: '' },
        { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/x', mtu: 1500, socketPath: '/s', pciID: '0000:00:01.0' },
      ],
      ips: [
        { interface: 2, address: '10.1.0.5/24', gateway: '10.1.0.1' },
        { interface: 2, address: 'fd00::5/64', gateway: 'fd00::1' },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }],
      dns: { nameservers: ['10.1.0.1'], domain: 'example', search: ['a.example'], options: ['ndots:2'] },
    });
  });

  it('prints 1.0.0 without the 1.1-only fields', () => {
    const out = formatResult(full, '1.0.0');
    assert.equal(out.cniVersion, '1.0.0');
    assert.deepEqual((out.interfaces as object[])[2], { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/x' });
    assert.deepEqual((out.interfaces as object[])[0], { name: 'cni0', mac: '02:00:00:00:00:01' });
    assert.deepEqual(out.routes, [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }]);
    assert.ok((out.ips as Record<string, unknown>[]).every((ip) => !('version' in ip)));
  });

  for (const v of ['0.4.0', '0.3.1', '0.3.0']) {
    it(`prints ${v} with ips[].version "4"/"6" and without 1.1-only fields`, () => {
      const out = formatResult(full, v);
      assert.equal(out.cniVersion, v);
      assert.deepEqual(out.ips, [
        { version: '4', interface: 2, address: '10.1.0.5/24', gateway: '10.1.0.1' },
        { version: '6', interface: 2, address: 'fd00::5/64', gateway: 'fd00::1' },
      ]);
      assert.deepEqual(out.routes, [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }]);
      assert.ok((out.interfaces as Record<string, unknown>[]).every((i) => !('mtu' in i) && !('socketPath' in i) && !('pciID' in i)));
    });
  }

  it('an IPAM result prints without interfaces', () => {
    const out = formatResult({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }] }, '0.4.0');
    assert.deepEqual(out, { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1' }] });
  });

  for (const v of CNI_VERSIONS) {
    it(`reads back what it prints for ${v}`, () => {
      const printed = formatResult(full, v);
      const back = parseResult(JSON.parse(JSON.stringify(printed)));
      assert.equal(back.cniVersion, v);
      assert.deepEqual(back.ips, full.ips);
      assert.deepEqual(back.dns, full.dns);
      assert.deepEqual(back.interfaces!.map((i) => i.name), ['cni0', 'veth1', 'eth0']);
      if (v === '1.1.0') assert.deepEqual(back, full);
      // Printing again in the same version is stable.
      assert.deepEqual(formatResult(back, v), printed);
    });
  }

  it('converts between every pair of versions', () => {
    for (const from of CNI_VERSIONS) {
      for (const to of CNI_VERSIONS) {
        const out = formatResult(parseResult(formatResult(full, from)), to);
        assert.equal(out.cniVersion, to);
        const ips = out.ips as Record<string, unknown>[];
        assert.equal(ips[0]!.version, compareVersions(to, '1.0.0') < 0 ? '4' : undefined, `${from}→${to}`);
        assert.equal(ips[0]!.address, '10.1.0.5/24');
      }
    }
  });

  it('reads a 0.2.0 result (ip4/ip6 blocks) into ips and routes', () => {
    const r = parseResult({
      cniVersion: '0.2.0',
      ip4: { ip: '10.2.0.7/16', gateway: '10.2.0.1', routes: [{ dst: '0.0.0.0/0' }] },
      ip6: { ip: 'fd00::7/64', routes: [{ dst: '::/0', gw: 'fd00::1' }] },
      dns: { nameservers: ['1.1.1.1'] },
    });
    assert.deepEqual(r, {
      cniVersion: '0.2.0',
      ips: [{ address: '10.2.0.7/16', gateway: '10.2.0.1' }, { address: 'fd00::7/64' }],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
      dns: { nameservers: ['1.1.1.1'] },
    });
    assert.deepEqual(formatResult(r, '1.0.0').ips, [{ address: '10.2.0.7/16', gateway: '10.2.0.1' }, { address: 'fd00::7/64' }]);
  });

  it('assumes the given version when a result names none, 0.1.0 otherwise', () => {
    assert.equal(parseResult({ ips: [{ address: '10.0.0.2/24' }] }, { version: '1.0.0' }).cniVersion, '1.0.0');
    assert.deepEqual(parseResult({ ip4: { ip: '10.0.0.2/24' } }), { cniVersion: '0.1.0', ips: [{ address: '10.0.0.2/24' }] });
  });

  it('refuses malformed results with the given code, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [[], /must be a JSON object/],
      [{ cniVersion: 1 }, /result\.cniVersion must be a string/],
      [{ cniVersion: '1.0.0', ips: {} }, /result\.ips must be a list/],
      [{ cniVersion: '1.0.0', ips: [{}] }, /ips\[0\]\.address is missing/],
      [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2' }] }, /ips\[0\]\.address .*missing "\/prefix-length"/],
      [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', gateway: 'x' }] }, /ips\[0\]\.gateway/],
      [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', interface: 0 }] }, /interface 0 does not index/],
      [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', interface: 'eth0' }] }, /interface must be an integer/],
      [{ cniVersion: '0.4.0', ips: [{ address: '10.0.0.2/24', version: 4 }] }, /version must be "4" or "6"/],
      [{ cniVersion: '1.0.0', interfaces: [{ mac: 'x' }] }, /interfaces\[0\]\.name is missing/],
      [{ cniVersion: '1.0.0', routes: [{ dst: 'default' }] }, /routes\[0\]\.dst/],
      [{ cniVersion: '1.1.0', routes: [{ dst: '0.0.0.0/0', mtu: '1500' }] }, /routes\[0\]\.mtu must be an integer/],
      [{ cniVersion: '1.0.0', dns: { nameservers: '1.1.1.1' } }, /dns\.nameservers must be a list of strings/],
    ];
    for (const [raw, msg] of bad) {
      assert.throws(() => parseResult(raw, { what: 'IPAM output', code: 6 }), (e: CniError) => e.code === 6 && msg.test(e.message) && e.message.startsWith('invalid IPAM output'), JSON.stringify(raw));
    }
  });

  it('negotiates the conflist version like libcni', () => {
    assert.equal(negotiateVersion('1.0.0', ['1.1.0', '0.4.0']), '1.1.0');
    assert.equal(negotiateVersion('1.0.0', ['1.1.0', '2.0.0'], '1.0.0'), '1.0.0');
    assert.equal(negotiateVersion('0.3.1', undefined), '0.3.1');
    assert.equal(negotiateVersion(undefined, ['0.4.0']), '0.4.0');
    assert.ok(compareVersions('0.10.0', '0.4.0') > 0);
  });
});
