import assert from 'node:assert/strict';
import { formatCidr, parseCidr } from '../../ipam/cidr.js';
import { DOCKER_LOCAL_DEFAULTS, parseDefaults, pickDefault } from '../../ipam/select.js';
import { isStrandError } from '../../common/errors.js';

const local = parseDefaults(DOCKER_LOCAL_DEFAULTS);
const pick = (taken: string[], defaults = local, family: 4 | 6 = 4) => {
  const c = pickDefault(defaults, taken.map((t) => parseCidr(t, { lenient: true })), family);
  return c && formatCidr(c);
};

describe('ipam/select', () => {
  it('follows Docker order: 172.17-31/16, then 192.168/16 in /20s', () => {
    assert.equal(pick([]), '172.17.0.0/16');
    assert.equal(pick(['172.17.0.0/16']), '172.18.0.0/16');
    const all172 = Array.from({ length: 15 }, (_, i) => `172.${17 + i}.0.0/16`);
    assert.equal(pick(all172), '192.168.0.0/20');
    assert.equal(pick([...all172, '192.168.0.0/20', '192.168.16.0/20']), '192.168.32.0/20');
  });

  it('skips anything overlapping, including smaller routes and bigger supernets', () => {
    assert.equal(pick(['172.17.5.0/24']), '172.18.0.0/16');
    assert.equal(pick(['172.16.0.0/12']), '192.168.0.0/20');
    assert.equal(pick(['172.0.0.0/8', '192.168.1.0/24']), '192.168.16.0/20');
  });

  it('returns undefined when every default is taken', () => {
    assert.equal(pick(['172.0.0.0/8', '192.168.0.0/16']), undefined);
  });

  it('jumps past blockers instead of testing every candidate', () => {
    const tens = parseDefaults([{ base: '10.0.0.0/8', size: 24 }]);
    // 10.0.0.0/9 blocks 32,768 candidates; the pick must land right after it.
    assert.equal(pick(['10.0.0.0/9'], tens), '10.128.0.0/24');
    // Many small blockers in a row: each /24 taken, then the next free one.
    const taken = Array.from({ length: 300 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    assert.equal(pick(taken, tens), '10.1.44.0/24');
  });

  it('handles IPv6 defaults and keeps families apart', () => {
    const v6 = parseDefaults([{ base: 'fd00::/48', size: 64 }, ...DOCKER_LOCAL_DEFAULTS]);
    assert.equal(pick([], v6, 6), 'fd00::/64');
    assert.equal(pick(['fd00::/64', '172.17.0.0/16'], v6, 6), 'fd00:0:0:1::/64');
    assert.equal(pick([], local, 6), undefined);
  });

  it('rejects bad configuration up front', () => {
    assert.throws(() => parseDefaults([{ base: '10.0.0.0/8', size: 4 }]), (e: unknown) => isStrandError(e, 'invalid') && /size 4/.test(e.message));
    assert.throws(() => parseDefaults([{ base: '10.0.0.1/8', size: 24 }]), (e: unknown) => isStrandError(e, 'invalid') && /host bits/.test(e.message));
  });
});
