import assert from 'node:assert/strict';
import { AttrWriter, parseAttrs, attrStr, attrU32, attrU16be, align4 } from '../../netlink/message.js';
import { bytesToIp, ipToBytes, macToBytes, bytesToMac, parsePrefix } from '../../netlink/address-bytes.js';
import { validateLinkName } from '../../netlink/links.js';
import { StrandError } from '../../common/errors.js';

describe('netlink attribute encoding', () => {
  it('writes 4-byte aligned TLVs with the unpadded length in the header', () => {
    const buf = new AttrWriter().str(3, 'eth0').u32(4, 1500).u16be(15, 4789).toBuffer();
    // "eth0\0" is 5 bytes: header 4 + 5 = 9, padded to 12.
    assert.equal(buf.readUInt16LE(0), 9);
    assert.equal(buf.readUInt16LE(2), 3);
    assert.equal(buf.length, 12 + 8 + 8);
    const attrs = parseAttrs(buf);
    assert.equal(attrStr(attrs, 3), 'eth0');
    assert.equal(attrU32(attrs, 4), 1500);
    assert.equal(attrU16be(attrs, 15), 4789);
    assert.deepEqual([...buf.subarray(20 + 4, 20 + 6)], [0x12, 0xb5]); // network byte order
  });

  it('nests attributes, and a fixed header before nested ones', () => {
    const header = Buffer.alloc(16, 0xab);
    const buf = new AttrWriter()
      .nested(18, (w) => w.str(1, 'veth').nestedWithHeader(2, header, (p) => p.str(3, 'peer0')))
      .toBuffer();
    const outer = parseAttrs(buf).get(18)!;
    const info = parseAttrs(outer);
    assert.equal(attrStr(info, 1), 'veth');
    const data = info.get(2)!;
    assert.deepEqual(data.subarray(0, 16), header);
    assert.equal(attrStr(parseAttrs(data, 16), 3), 'peer0');
  });

  it('stops at a malformed tail instead of reading past the buffer', () => {
    const good = new AttrWriter().u32(1, 7).toBuffer();
    const bad = Buffer.concat([good, Buffer.from([200, 0, 2, 0, 1, 2])]);
    const attrs = parseAttrs(bad);
    assert.equal(attrs.size, 1);
    assert.equal(attrU32(attrs, 1), 7);
    assert.equal(align4(5), 8);
  });

  it('masks the nested and byte-order flags off attribute types', () => {
    const buf = new AttrWriter().u32(0x8000 | 2, 9).toBuffer();
    assert.equal(attrU32(parseAttrs(buf), 2), 9);
  });
});

describe('address bytes', () => {
  it('round-trips IPv4 and IPv6 in canonical form', () => {
    for (const [input, canonical] of [
      ['10.1.2.3', '10.1.2.3'],
      ['fd00::1', 'fd00::1'],
      ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
      ['::ffff:a00:1', '::ffff:10.0.0.1'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
    ] as const) {
      assert.equal(bytesToIp(ipToBytes(input)), canonical, input);
    }
    assert.deepEqual([...ipToBytes('192.168.0.1')], [192, 168, 0, 1]);
  });

  it('rejects malformed addresses, prefixes and MACs with the value in the message', () => {
    for (const bad of ['10.0.0', '10.0.0.256', 'fd00:::1', 'x']) {
      assert.throws(() => ipToBytes(bad), (e: StrandError) => e.code === 'invalid' && e.message.includes(`"${bad}"`));
    }
    assert.throws(() => parsePrefix('10.0.0.0/-1'), /prefix length "-1"/);
    assert.throws(() => parsePrefix('fd00::/129'), /must be 0 to 128/);
    assert.deepEqual(parsePrefix('fd00::/64'), { ip: 'fd00::', prefixLen: 64, family: 6 });
    assert.throws(() => macToBytes('02:00:00:00:00'), /invalid MAC address/);
    assert.equal(bytesToMac(macToBytes('02:AB:cd:00:00:01')), '02:ab:cd:00:00:01');
  });

  it('validates interface names as the kernel does', () => {
    validateLinkName('a'.repeat(15));
    assert.throws(() => validateLinkName('a'.repeat(16)), /16 bytes long/);
    assert.throws(() => validateLinkName('éééééééé'), /16 bytes long/); // bytes, not characters
    assert.throws(() => validateLinkName('eth0:1'), /':'/);
  });
});
