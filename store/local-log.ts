// The on-disk format of the local store: a header, then framed records, each
// [u32 payload length][u32 crc32 of payload][JSON payload]. The first record
// is a snapshot; every later one is a committed change.
//
// A damaged record is one of two things, and parseRecords tells them apart:
// - the torn tail of a writer that died mid-append (never acknowledged): the
//   last record is cut short, or zero-filled from there to the end of the
//   file (size extended, data lost in a power cut). The next writer
//   truncates it.
// - corruption: valid records follow the bad one, or the last record is
//   complete but fails its checksum or does not parse. Dropping it, or
//   what follows, would lose acknowledged writes, so the store refuses to
//   open and `strand store salvage` copies what is intact.
// A reader without the lock can see the last record half-written by a live
// writer, which looks like a complete bad record; only a check under the
// lock may call that corruption ('suspect' until then).

import { crc32 } from 'node:zlib';

export const MAGIC = Buffer.from('STRNDLG1');
const FRAME = 8;
/** Larger than any sane record; a length above it is garbage, not a record. */
const MAX_RECORD = 1 << 30;

/** put: [key, value] or [key, value, lease]; delete: [key]. */
export type LogOp = [string, string] | [string, string, string] | [string];

/** [lease id, ttl seconds, expiry in ms since the epoch]. */
export type LogLease = [string, number, number];

/** One committed change. Applied in field order: g, o, x. */
export interface ChangeRecord {
  /** Store revision of the ops; present exactly when `o` is. */
  r?: number;
  o?: LogOp[];
  /** Leases granted or renewed. */
  g?: LogLease[];
  /** Leases ended (their keys are deleted by `o` of the same record). */
  x?: string[];
}

/** A put event in history: [key, value, createRevision] or with a lease; delete: [key]. */
export type LogEvent = [string, string, number] | [string, string, number, string] | [string];

export interface SnapshotRecord {
  s: 1;
  /** Store revision the snapshot is at. */
  r: number;
  /** History is kept for revisions above this one. */
  b: number;
  /** [key, value, createRevision, modRevision, lease?]. */
  kv: Array<[string, string, number, number] | [string, string, number, number, string]>;
  ls: LogLease[];
  /** Recent history: [revision, events]. */
  h: Array<[number, LogEvent[]]>;
}

export function encodeRecord(record: ChangeRecord | SnapshotRecord): Buffer {
  const payload = Buffer.from(JSON.stringify(record), 'utf8');
  const frame = Buffer.allocUnsafe(FRAME + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, FRAME);
  return frame;
}

/** What is wrong at the first record that does not parse. */
export interface Damage {
  /**
   * torn: cut short or zero-filled, with nothing valid after it (a dead
   * writer's tail); suspect: complete but bad, with nothing valid after it
   * (corruption, unless a live writer is still writing it); corrupt: valid
   * records follow it.
   */
  kind: 'torn' | 'suspect' | 'corrupt';
  /** Offset of the bad record (in the file, when parseRecords was given the base). */
  offset: number;
  /** What is wrong with it, for messages. */
  reason: string;
  /** Offset of the first valid record after it (corrupt only). */
  nextValid?: number;
}

export interface Parsed {
  records: Array<ChangeRecord | SnapshotRecord>;
  /** Bytes of `buf` that hold whole, valid records. */
  used: number;
  /** Where each record ends in `buf`. */
  ends: number[];
  /** Set when bytes past `used` are not a valid record. */
  damage?: Damage;
}

/** The record framed at `pos`, or why there is none. */
function frameAt(buf: Buffer, pos: number): { record: ChangeRecord | SnapshotRecord; end: number } | { bad: string; incomplete: boolean } {
  if (buf.length - pos < FRAME) return { bad: `is cut short (${buf.length - pos} bytes of an ${FRAME}-byte frame header)`, incomplete: true };
  const len = buf.readUInt32LE(pos);
  // No real record is empty or shorter than "{}".
  if (len < 2) return { bad: `has an impossible length ${len}`, incomplete: false };
  if (len > MAX_RECORD) return { bad: `has an impossible length ${len}`, incomplete: false };
  if (buf.length - pos - FRAME < len) return { bad: `is cut short (${buf.length - pos - FRAME} of ${len} payload bytes)`, incomplete: true };
  const payload = buf.subarray(pos + FRAME, pos + FRAME + len);
  if (crc32(payload) !== buf.readUInt32LE(pos + 4)) return { bad: `fails its checksum (${len} payload bytes)`, incomplete: false };
  let record: unknown;
  try {
    record = JSON.parse(payload.toString('utf8'));
  } catch {
    return { bad: 'passes its checksum but is not JSON', incomplete: false };
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return { bad: 'passes its checksum but is not a record', incomplete: false };
  return { record: record as ChangeRecord | SnapshotRecord, end: pos + FRAME + len };
}

function zeroFrom(buf: Buffer, pos: number): boolean {
  for (let i = pos; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * The first position after `from` where a valid record starts, if any. Only
 * for damaged logs: it tries every byte offset, but a length that does not
 * fit or a payload that does not start with "{" rules most out at once.
 */
export function findNextRecord(buf: Buffer, from: number): number | undefined {
  for (let q = from; q + FRAME + 2 <= buf.length; q++) {
    const len = buf.readUInt32LE(q);
    if (len < 2 || len > MAX_RECORD || q + FRAME + len > buf.length || buf[q + FRAME] !== 0x7b) continue;
    if ('record' in frameAt(buf, q)) return q;
  }
  return undefined;
}

/**
 * Parses whole records from the start of buf, stopping at the first one that
 * is incomplete or damaged and saying which (`damage`); `base` is buf's offset
 * in the file, so offsets in `damage` are file offsets.
 */
export function parseRecords(buf: Buffer, base = 0): Parsed {
  const records: Array<ChangeRecord | SnapshotRecord> = [];
  const ends: number[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const r = frameAt(buf, pos);
    if (!('record' in r)) {
      const next = findNextRecord(buf, pos + 1);
      let damage: Damage;
      if (next !== undefined) {
        damage = { kind: 'corrupt', offset: base + pos, reason: r.bad, nextValid: base + next };
      } else if (r.incomplete || zeroFrom(buf, pos)) {
        damage = { kind: 'torn', offset: base + pos, reason: zeroFrom(buf, pos) ? 'is zero-filled to the end of the file' : r.bad };
      } else {
        damage = { kind: 'suspect', offset: base + pos, reason: r.bad };
      }
      return { records, used: pos, ends, damage };
    }
    records.push(r.record);
    pos = r.end;
    ends.push(pos);
  }
  return { records, used: pos, ends };
}

/** Every valid record of a damaged buffer, skipping what is not: for salvage. */
export function scanRecords(buf: Buffer, base = 0): {
  records: Array<{ offset: number; record: ChangeRecord | SnapshotRecord }>;
  skipped: Array<{ offset: number; length: number; reason: string }>;
} {
  const records: Array<{ offset: number; record: ChangeRecord | SnapshotRecord }> = [];
  const skipped: Array<{ offset: number; length: number; reason: string }> = [];
  let pos = 0;
  while (pos < buf.length) {
    const r = frameAt(buf, pos);
    if ('record' in r) {
      records.push({ offset: base + pos, record: r.record });
      pos = r.end;
      continue;
    }
    const next = findNextRecord(buf, pos + 1) ?? buf.length;
    skipped.push({ offset: base + pos, length: next - pos, reason: zeroFrom(buf, pos) ? 'zero-filled' : r.bad });
    pos = next;
  }
  return { records, skipped };
}

export function isSnapshot(record: ChangeRecord | SnapshotRecord): record is SnapshotRecord {
  return (record as SnapshotRecord).s === 1;
}
