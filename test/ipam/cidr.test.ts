import assert from 'node:assert/strict';
import {
  canonicalCidr,
  canonicalIp,
  contains,
  containsCidr,
  formatCidr,
  ipFromHex,
  ipHex,
  lastOf,
  overlaps,
  parseCidr,
  parseIp,
  size,
} from '../../ipam/cidr.js';
import { isStrandError } from '../../common/errors.js';

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isStrandError(err, 'invalid'), `expected an 'invalid' StrandError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('ipam/cidr', () => {
  it('parses and formats IPv4', () => {
    assert.equal(parseIp('10.1.2.3').value, 0x0a010203n);
    assert.equal(parseIp('255.255.255.255').value, 0xffffffffn);
    assert.equal(canonicalIp('0.0.0.0'), '0.0.0.0');
    assert.equal(canonicalIp('192.168.0.1'), '192.168.0.1');
  });

  it('rejects bad IPv4 naming the value', () => {
    rejects(() => parseIp('10.0.0.300'), /invalid IP address "10\.0\.0\.300": octet 300 is out of range/);
    rejects(() => parseIp('10.0.0'), /"10\.0\.0".*four/);
    rejects(() => parseIp('10.0.0.01'), /leading zero/);
    rejects(() => parseIp('10.0.0.-1'), /"-1"/);
    rejects(() => parseIp(''), /empty/);
    rejects(() => parseIp('a.b.c.d'), /"a"/);
  });

  it('parses IPv6 in all its spellings and formats per RFC 5952', () => {
    assert.equal(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(canonicalIp('::'), '::');
    assert.equal(canonicalIp('::1'), '::1');
    assert.equal(canonicalIp('fe80::'), 'fe80::');
    // Longest zero run wins; a tie goes to the first; one zero group is not compressed.
    assert.equal(canonicalIp('2001:db8:0:0:1:0:0:0'), '2001:db8:0:0:1::');
    assert.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(canonicalIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(canonicalIp('::ffff:10.0.0.1'), '::ffff:10.0.0.1');
    assert.equal(parseIp('::ffff:10.0.0.1').value, 0xffff0a000001n);
    assert.equal(canonicalIp('64:ff9b::192.0.2.33'), '64:ff9b::c000:221');
    assert.equal(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').value, (1n << 128n) - 1n);
  });

  it('rejects bad IPv6 naming the value', () => {
    rejects(() => parseIp('2001:db8::1::2'), /"2001:db8::1::2".*only once/);
    rejects(() => parseIp('2001:db8:1:2:3:4:5:6:7'), /8 groups/);
    rejects(() => parseIp('1:2:3:4:5:6:7:8::'), /at least one zero group/);
    rejects(() => parseIp('2001:db8::g'), /"g"/);
    rejects(() => parseIp('2001:db8::12345'), /"12345"/);
    rejects(() => parseIp('fe80::1%eth0'), /zone/);
    rejects(() => parseIp('::1.2.3.256'), /embedded IPv4/);
    rejects(() => parseIp(':1::'), /hex digits/);
  });

  it('parses CIDRs and rejects host bits, naming the network', () => {
    const c = parseCidr('10.0.0.0/8');
    assert.deepEqual(c, { family: 4, base: 0x0a000000n, prefix: 8 });
    assert.equal(canonicalCidr('2001:DB8::/32'), '2001:db8::/32');
    rejects(() => parseCidr('10.0.0.300/24'), /invalid CIDR "10\.0\.0\.300\/24": octet 300/);
    rejects(() => parseCidr('10.0.0.1/24'), /invalid CIDR "10\.0\.0\.1\/24": host bits are set; the network is 10\.0\.0\.0\/24/);
    rejects(() => parseCidr('2001:db8::1/64'), /host bits are set; the network is 2001:db8::\/64/);
    rejects(() => parseCidr('10.0.0.0/33'), /prefix length must be a number 0-32/);
    rejects(() => parseCidr('::/129'), /0-128/);
    rejects(() => parseCidr('10.0.0.0'), /missing "\/prefix-length"/);
    rejects(() => parseCidr('10.0.0.0/'), /prefix length/);
    rejects(() => parseCidr('10.0.0.0/2a'), /prefix length/);
    rejects(() => parseCidr('x/24', { what: 'subnet' }), /invalid subnet "x\/24"/);
    // Lenient parsing (kernel routes, interface addresses) masks host bits off.
    assert.equal(formatCidr(parseCidr('172.20.0.1/16', { lenient: true })), '172.20.0.0/16');
  });

  it('computes size, last address, containment and overlap', () => {
    const a = parseCidr('10.0.0.0/24');
    assert.equal(size(a), 256n);
    assert.equal(lastOf(a), parseIp('10.0.0.255').value);
    assert.ok(contains(a, parseIp('10.0.0.0')));
    assert.ok(contains(a, parseIp('10.0.0.255')));
    assert.ok(!contains(a, parseIp('10.0.1.0')));
    assert.ok(!contains(a, parseIp('::a00:1')), 'families never mix');
    assert.ok(containsCidr(parseCidr('10.0.0.0/16'), a));
    assert.ok(!containsCidr(a, parseCidr('10.0.0.0/16')));
    assert.ok(containsCidr(a, a));
    assert.ok(overlaps(parseCidr('10.0.0.0/16'), a));
    assert.ok(overlaps(a, parseCidr('10.0.0.128/25')));
    assert.ok(!overlaps(a, parseCidr('10.0.1.0/24')));
    assert.ok(!overlaps(parseCidr('0.0.0.0/0'), parseCidr('::/0')));
    const v6 = parseCidr('2001:db8::/48');
    assert.equal(size(v6), 1n << 80n);
    assert.equal(lastOf(v6), parseIp('2001:db8:0:ffff:ffff:ffff:ffff:ffff').value);
    assert.ok(overlaps(v6, parseCidr('2001:db8:0:1::/64')));
    assert.ok(!overlaps(v6, parseCidr('2001:db8:1::/64')));
  });

  it('hex keys have fixed width, sort like addresses and round-trip', () => {
    assert.equal(ipHex(parseIp('10.0.0.1')), '0a000001');
    assert.equal(ipHex(parseIp('::1')), '00000000000000000000000000000001');
    const addrs = ['10.0.0.2', '10.0.0.10', '10.0.1.1', '9.255.255.255'].map((s) => parseIp(s));
    const byHex = [...addrs].sort((x, y) => (ipHex(x) < ipHex(y) ? -1 : 1)).map((x) => x.value);
    const byValue = [...addrs].sort((x, y) => (x.value < y.value ? -1 : 1)).map((x) => x.value);
    assert.deepEqual(byHex, byValue);
    for (const s of ['10.0.0.1', '2001:db8::ff', '::']) assert.deepEqual(ipFromHex(ipHex(parseIp(s))), parseIp(s));
  });
});
