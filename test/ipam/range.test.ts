import assert from 'node:assert/strict';
import { lastOf, parseCidr, parseIp } from '../../ipam/cidr.js';
import { type PoolShape, blockOf, capacity, firstFreeFrom, isCandidate, isUnusable, makeShape, nextCandidate } from '../../ipam/range.js';

const ip = (s: string) => parseIp(s).value;
// A range is a CIDR ("10.0.0.128/25") or first-last ("10.0.0.10-10.0.0.20").
const shape = (subnet: string, extra: { range?: string; reserved?: string[] } = {}): PoolShape => {
  let bounds: { first: bigint; last: bigint } | undefined;
  if (extra.range?.includes('/')) {
    const r = parseCidr(extra.range);
    bounds = { first: r.base, last: lastOf(r) };
  } else if (extra.range) {
    const [a, b] = extra.range.split('-') as [string, string];
    bounds = { first: ip(a), last: ip(b) };
  }
  return makeShape(parseCidr(subnet), bounds, (extra.reserved ?? []).map(ip));
};

// Walks next-free order n times from the start, as an allocator with nothing released would.
function order(s: PoolShape, n: number): bigint[] {
  const out: bigint[] = [];
  let cur: bigint | undefined;
  for (let i = 0; i < n; i++) out.push((cur = nextCandidate(s, cur)));
  return out;
}

describe('ipam/range', () => {
  it('never offers network or broadcast (IPv4) or the subnet-router anycast address (IPv6)', () => {
    const s = shape('10.0.0.0/24');
    assert.ok(isUnusable(s.subnet, ip('10.0.0.0')));
    assert.ok(isUnusable(s.subnet, ip('10.0.0.255')));
    assert.ok(!isUnusable(s.subnet, ip('10.0.0.1')));
    const v6 = shape('2001:db8::/64');
    assert.ok(isUnusable(v6.subnet, ip('2001:db8::')));
    assert.ok(!isUnusable(v6.subnet, ip('2001:db8::ffff:ffff:ffff:ffff')), 'IPv6 has no broadcast');
    // Point-to-point and host routes use every address.
    assert.ok(!isUnusable(parseCidr('10.0.0.0/31'), ip('10.0.0.0')));
    assert.ok(!isUnusable(parseCidr('10.0.0.0/31'), ip('10.0.0.1')));
    assert.ok(!isUnusable(parseCidr('10.0.0.7/32'), ip('10.0.0.7')));
  });

  it('counts capacity without enumerating', () => {
    assert.equal(capacity(shape('10.0.0.0/24')), 254n);
    assert.equal(capacity(shape('10.0.0.0/24', { reserved: ['10.0.0.1', '10.0.0.9'] })), 252n);
    assert.equal(capacity(shape('10.0.0.0/30')), 2n);
    assert.equal(capacity(shape('10.0.0.0/31')), 2n);
    assert.equal(capacity(shape('10.0.0.0/32')), 1n);
    // A range inside the subnet: only reserved addresses inside the range count.
    assert.equal(capacity(shape('10.0.0.0/24', { range: '10.0.0.128/25', reserved: ['10.0.0.1'] })), 127n);
    assert.equal(capacity(shape('10.0.0.0/24', { range: '10.0.0.0/30', reserved: ['10.0.0.1'] })), 2n);
    assert.equal(capacity(shape('2001:db8::/64')), (1n << 64n) - 1n);
    assert.equal(capacity(shape('2001:db8::/48', { reserved: ['2001:db8::1'] })), (1n << 80n) - 2n);
  });

  it('walks in order after the cursor, skipping reserved, and wraps', () => {
    const s = shape('10.0.0.0/29', { reserved: ['10.0.0.1', '10.0.0.4'] });
    assert.deepEqual(order(s, 6), ['10.0.0.2', '10.0.0.3', '10.0.0.5', '10.0.0.6', '10.0.0.2', '10.0.0.3'].map(ip));
    assert.equal(nextCandidate(s, ip('10.0.0.6')), ip('10.0.0.2'));
    // A cursor outside the range (e.g. the range changed meaning) restarts at the range.
    assert.equal(nextCandidate(s, ip('192.168.0.1')), ip('10.0.0.2'));
  });

  it('stays inside the ip range', () => {
    const s = shape('10.0.0.0/24', { range: '10.0.0.252/30' });
    assert.deepEqual(order(s, 5), ['10.0.0.252', '10.0.0.253', '10.0.0.254', '10.0.0.252', '10.0.0.253'].map(ip));
    assert.ok(!isCandidate(s, ip('10.0.0.2')));
    // Unaligned bounds, as CNI host-local's rangeStart/rangeEnd.
    const u = shape('10.0.0.0/16', { range: '10.0.1.250-10.0.2.3', reserved: ['10.0.2.0'] });
    assert.equal(capacity(u), 9n);
    assert.deepEqual(order(u, 10).map(String), [506n, 507n, 508n, 509n, 510n, 511n, 513n, 514n, 515n, 506n].map((x) => String(ip('10.0.0.0') + x)));
  });

  it('works the same on an IPv6 /48 without enumerating it', () => {
    const s = shape('2001:db8::/48');
    assert.deepEqual(order(s, 3), ['2001:db8::1', '2001:db8::2', '2001:db8::3'].map(ip));
    assert.equal(nextCandidate(s, ip('2001:db8:0:ffff:ffff:ffff:ffff:ffff')), ip('2001:db8::1'));
  });

  it('finds the first free address in an aligned block', () => {
    const s = shape('10.0.0.0/16', { range: '10.0.1.10/31' });
    assert.deepEqual(blockOf(s, ip('10.0.1.10'), 8), { start: ip('10.0.1.10'), end: ip('10.0.1.11') });
    const t = shape('10.0.0.0/16');
    assert.deepEqual(blockOf(t, ip('10.0.3.77'), 8), { start: ip('10.0.3.0'), end: ip('10.0.3.255') });
    const taken = new Set([ip('10.0.3.77'), ip('10.0.3.78')]);
    assert.equal(firstFreeFrom(t, ip('10.0.3.77'), ip('10.0.3.255'), taken), ip('10.0.3.79'));
    const full = new Set(Array.from({ length: 256 }, (_, i) => ip(`10.0.3.${i}`)));
    assert.equal(firstFreeFrom(t, ip('10.0.3.0'), ip('10.0.3.255'), full), undefined);
  });
});
