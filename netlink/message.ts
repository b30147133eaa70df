// Netlink attribute (TLV) encoding and decoding. Attributes are 4-byte
// aligned: u16 length (header included), u16 type, payload, padding.

const NLA_HDRLEN = 4;
const NLA_TYPE_MASK = 0x3fff; // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

export const align4 = (n: number): number => (n + 3) & ~3;

/** Builds a run of attributes; nested() gives a sub-builder. */
export class AttrWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  bytes(type: number, payload: Buffer): this {
    const len = NLA_HDRLEN + payload.length;
    const buf = Buffer.alloc(align4(len));
    buf.writeUInt16LE(len, 0);
    buf.writeUInt16LE(type, 2);
    payload.copy(buf, NLA_HDRLEN);
    this.parts.push(buf);
    this.size += buf.length;
    return this;
  }

  u8(type: number, value: number): this {
    return this.bytes(type, Buffer.from([value]));
  }

  u16be(type: number, value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    return this.bytes(type, b);
  }

  u32(type: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    return this.bytes(type, b);
  }

  i32(type: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    return this.bytes(type, b);
  }

  /** A NUL-terminated string. */
  str(type: number, value: string): this {
    return this.bytes(type, Buffer.from(value + '\0', 'utf8'));
  }

  nested(type: number, fill: (w: AttrWriter) => void): this {
    const inner = new AttrWriter();
    fill(inner);
    return this.bytes(type, inner.toBuffer());
  }

  /** A nested attribute whose payload starts with a fixed header (VETH_INFO_PEER carries an ifinfomsg). */
  nestedWithHeader(type: number, header: Buffer, fill: (w: AttrWriter) => void): this {
    const inner = new AttrWriter();
    fill(inner);
    return this.bytes(type, Buffer.concat([header, inner.toBuffer()]));
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

/** Attributes by type; the last one wins if a type repeats. */
export type Attrs = Map<number, Buffer>;

export function parseAttrs(buf: Buffer, start = 0, end = buf.length): Attrs {
  const attrs: Attrs = new Map();
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > end) break; // malformed tail: stop rather than read past it
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    attrs.set(type, buf.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return attrs;
}

/** A NUL-terminated string attribute. */
export function attrStr(attrs: Attrs, type: number): string | undefined {
  const b = attrs.get(type);
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

export function attrU32(attrs: Attrs, type: number): number | undefined {
  const b = attrs.get(type);
  return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
}

export function attrI32(attrs: Attrs, type: number): number | undefined {
  const b = attrs.get(type);
  return b && b.length >= 4 ? b.readInt32LE(0) : undefined;
}

export function attrU8(attrs: Attrs, type: number): number | undefined {
  const b = attrs.get(type);
  return b && b.length >= 1 ? b.readUInt8(0) : undefined;
}

export function attrU16be(attrs: Attrs, type: number): number | undefined {
  const b = attrs.get(type);
  return b && b.length >= 2 ? b.readUInt16BE(0) : undefined;
}
