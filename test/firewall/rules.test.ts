import assert from 'node:assert/strict';
import { networkPlan, endpointPlan, basePlan, type ObjectPlan } from '../../firewall/rules.js';
import { addScript, removeScript, repairScript, removeAllScript, ensureBaseScript, render } from '../../firewall/script.js';
import { parseSave } from '../../firewall/save.js';
import { chainKey, networkFilterChain, endpointNatChain } from '../../firewall/names.js';
import type { NetworkRules, EndpointPorts } from '../../firewall/types.js';

const n: NetworkRules = { id: 'n1', bridge: 'br0', subnets: ['10.1.0.0/24', 'fd00:1::/64'], icc: true, internal: false, masquerade: true };
const e: EndpointPorts = {
  endpointId: 'e1', networkId: 'n1', bridge: 'br0', containerIp: '10.1.0.2',
  ports: [
    { proto: 'tcp', hostPort: 8080, containerPort: 80 },
    { proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53 },
    { proto: 'tcp', hostIp: '::1', hostPort: 9090, containerPort: 90 },
  ],
};
const lines = (p: ObjectPlan, table: 'filter' | 'nat'): string[] => (p.tables[table]?.rules ?? []).map((r) => r.args.join(' '));

describe('firewall rule generation', () => {
  it('makes a network a whitelist: replies and published ports, icc, isolation, outbound, then DROP', () => {
    assert.deepEqual(lines(networkPlan(n, 4), 'filter'), [
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-o br0 -m conntrack --ctstate DNAT -j ACCEPT',
      '-i br0 -o br0 -j ACCEPT',
      '-i br0 -j STRAND-ISOLATION',
      '-i br0 -j ACCEPT',
      '-j DROP',
    ]);
    assert.ok(lines(networkPlan({ ...n, icc: false }, 4), 'filter').includes('-i br0 -o br0 -j DROP'));
    assert.deepEqual(lines(networkPlan({ ...n, internal: true }, 4), 'filter'), ['-i br0 -o br0 -j ACCEPT', '-j DROP']);
    assert.equal(networkPlan({ ...n, internal: true }, 4).tables.nat, undefined, 'no NAT for an internal network');
  });

  it('masquerades (or SNATs) outbound, hairpin and loopback traffic per family', () => {
    assert.deepEqual(lines(networkPlan(n, 4), 'nat'), [
      '-s 10.1.0.0/24 ! -o br0 -j MASQUERADE',
      '-s 10.1.0.0/24 -o br0 -m conntrack --ctstate DNAT -j MASQUERADE',
      '-s 127.0.0.0/8 -o br0 -j MASQUERADE',
    ]);
    assert.deepEqual(lines(networkPlan({ ...n, hostIp: '192.0.2.7' }, 4), 'nat')[0], '-s 10.1.0.0/24 ! -o br0 -j SNAT --to-source 192.0.2.7');
    assert.deepEqual(lines(networkPlan({ ...n, hostIp: '192.0.2.7' }, 6), 'nat')[0], '-s fd00:1::/64 ! -o br0 -j MASQUERADE', 'a v4 SNAT address does not apply to v6');
    assert.deepEqual(lines(networkPlan({ ...n, masquerade: false }, 4), 'nat'), [
      '-s 10.1.0.0/24 -o br0 -m conntrack --ctstate DNAT -j MASQUERADE',
      '-s 127.0.0.0/8 -o br0 -j MASQUERADE',
    ]);
    // A v4-only network still filters IPv6 on its bridge but has no IPv6 NAT.
    const v4only = { ...n, subnets: ['10.1.0.0/24'] };
    assert.equal(networkPlan(v4only, 6).tables.nat, undefined);
    assert.ok(!lines(networkPlan(v4only, 6), 'filter').includes('-i br0 -j ACCEPT'), 'no IPv6 outbound without an IPv6 subnet');
  });

  it('jumps into per-object chains with tagged rules', () => {
    const p = networkPlan(n, 4);
    assert.deepEqual(p.tables.filter!.jumps.map((r) => `${r.chain} ${r.args.join(' ')}`), [
      'STRAND-FORWARD -m comment --comment strand:n:n1 -i br0 -j STRAND-N-n1',
      'STRAND-FORWARD -m comment --comment strand:n:n1 -o br0 -j STRAND-N-n1',
      'STRAND-ISOLATION -m comment --comment strand:n:n1 -o br0 -m conntrack ! --ctstate DNAT -j DROP',
    ]);
    assert.deepEqual(networkPlan({ ...n, internal: true }, 4).tables.filter!.jumps[2]!.args.slice(4), ['-o', 'br0', '-j', 'DROP']);
    assert.deepEqual(basePlan(4).tables.filter!.jumps[0], { chain: 'FORWARD', args: ['-m', 'comment', '--comment', 'strand:base', '-j', 'STRAND-FORWARD'], insert: true });
  });

  it('DNATs each published port of the address family, to a specific host address when given', () => {
    assert.deepEqual(lines(endpointPlan(e), 'nat'), [
      '-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80',
      '-d 127.0.0.1 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.1.0.2:53',
    ]);
    assert.deepEqual(lines(endpointPlan({ ...e, containerIp: 'fd00:1::2' }), 'nat'), [
      '-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:1::2]:80',
      '-d ::1 -p tcp -m tcp --dport 9090 -j DNAT --to-destination [fd00:1::2]:90',
    ]);
    assert.equal(endpointPlan({ ...e, containerIp: 'fd00:1::2' }).family, 6);
  });

  it('writes one restore batch: chains, rules, jumps on add; jumps, flush, delete on remove', () => {
    assert.equal(render(addScript(endpointPlan({ ...e, ports: [e.ports[0]!] }))), [
      '*nat',
      '-N STRAND-P-e1',
      '-A STRAND-P-e1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80',
      '-A STRAND-DNAT -m comment --comment strand:e:e1 -j STRAND-P-e1',
      'COMMIT',
      '',
    ].join('\n'));
    assert.equal(render(removeScript(endpointPlan(e))), '*nat\n-D STRAND-DNAT -m comment --comment strand:e:e1 -j STRAND-P-e1\n-F STRAND-P-e1\n-X STRAND-P-e1\nCOMMIT\n');
    assert.match(render(addScript(basePlan(4))), /^-I FORWARD -m comment --comment strand:base -j STRAND-FORWARD$/m);
  });

  it('derives chain names of at most 28 characters, stable and distinct for long ids', () => {
    assert.equal(networkFilterChain('abc'), 'STRAND-N-abc');
    const a = 'x'.repeat(30) + 'a';
    const b = 'x'.repeat(30) + 'b';
    assert.equal(endpointNatChain(a).length, 28);
    assert.notEqual(chainKey(a), chainKey(b));
    assert.equal(chainKey(a), chainKey(a));
    assert.equal(chainKey('x'.repeat(19)), 'x'.repeat(19));
  });
});

const SAVED = `# Generated by iptables-save
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:STRAND-FORWARD - [0:0]
:STRAND-ISOLATION - [0:0]
:STRAND-N-n1 - [0:0]
:DOCKER - [0:0]
-A FORWARD -m comment --comment "strand:base" -j STRAND-FORWARD
-A FORWARD -j DOCKER
-A STRAND-FORWARD -i br0 -m comment --comment "strand:n:n1" -j STRAND-N-n1
-A STRAND-FORWARD -o br0 -m comment --comment "strand:n:n1" -j STRAND-N-n1
-A STRAND-FORWARD -i br9 -m comment --comment "strand:n:n9" -j STRAND-N-n9
-A STRAND-ISOLATION -o br0 -m comment --comment "strand:n:n1" -j DROP
-A STRAND-N-n1 -j DROP
-A DOCKER -o docker0 -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:STRAND-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment "strand:base" -j STRAND-POSTROUTING
COMMIT
`;

describe('firewall repair from iptables-save', () => {
  it('parses chains, rules, tags and targets', () => {
    const s = parseSave(SAVED);
    assert.deepEqual([...s.keys()], ['filter', 'nat']);
    assert.ok(s.get('filter')!.chains.has('STRAND-N-n1'));
    const r = s.get('filter')!.rules.find((x) => x.chain === 'STRAND-ISOLATION')!;
    assert.equal(r.tag, 'strand:n:n1');
    assert.equal(r.target, 'DROP');
  });

  it('removes exactly one object by its tag and chains, leaving others and foreign rules', () => {
    const text = render(repairScript(parseSave(SAVED), 'strand:n:n1', undefined, new Set(['STRAND-N-n1', 'STRAND-M-n1']), false, 4));
    assert.equal(text, [
      '*filter',
      '-D STRAND-FORWARD -i br0 -m comment --comment "strand:n:n1" -j STRAND-N-n1',
      '-D STRAND-FORWARD -o br0 -m comment --comment "strand:n:n1" -j STRAND-N-n1',
      '-D STRAND-ISOLATION -o br0 -m comment --comment "strand:n:n1" -j DROP',
      '-F STRAND-N-n1',
      '-X STRAND-N-n1',
      'COMMIT',
      '',
    ].join('\n'));
  });

  it('re-adds an object over what exists, reusing its chains and adding the missing base', () => {
    const text = render(repairScript(parseSave(SAVED), 'strand:n:n1', networkPlan(n, 4), new Set(['STRAND-N-n1', 'STRAND-M-n1']), true, 4));
    assert.match(text, /^-F STRAND-N-n1$/m);
    assert.doesNotMatch(text, /^-N STRAND-N-n1$/m, 'the chain exists: flushed, not created');
    assert.doesNotMatch(text, /^-X STRAND-N-n1$/m);
    assert.match(text, /^-N STRAND-M-n1$/m);
    assert.match(text, /^-N STRAND-DNAT$/m, 'missing base chain');
    assert.match(text, /^-A PREROUTING -m comment --comment strand:base -m addrtype --dst-type LOCAL -j STRAND-DNAT$/m);
    assert.doesNotMatch(text, /^-I FORWARD/m, 'present base jump not repeated');
    assert.equal(ensureBaseScript(parseSave(SAVED), 4).get('filter'), undefined);
  });

  it('removeAll deletes every strand chain and tagged rule, and nothing foreign', () => {
    const text = render(removeAllScript(parseSave(SAVED)));
    assert.doesNotMatch(text, /DOCKER/);
    for (const c of ['STRAND-FORWARD', 'STRAND-ISOLATION', 'STRAND-N-n1', 'STRAND-POSTROUTING']) assert.match(text, new RegExp(`^-X ${c}$`, 'm'));
    assert.match(text, /^-D FORWARD -m comment --comment "strand:base" -j STRAND-FORWARD$/m);
    assert.match(text, /^-D POSTROUTING -m comment --comment "strand:base" -j STRAND-POSTROUTING$/m);
  });
});
