// The on-disk format of the local store: a header, then framed records, each
// [u32 payload length][u32 crc32 of payload][JSON payload]. The first record
// is a snapshot; every later one is a committed change. A record that is cut
// short or fails its checksum ends the log: it is the torn tail of a writer
// that died mid-append, never acknowledged, and the next writer truncates it.

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

export interface Parsed {
  records: Array<ChangeRecord | SnapshotRecord>;
  /** Bytes of `buf` that hold whole, valid records. */
  used: number;
  /** Where each record ends in `buf`. */
  ends: number[];
}

/** Parses whole records from the start of buf, stopping at the first incomplete or damaged one. */
export function parseRecords(buf: Buffer): Parsed {
  const records: Array<ChangeRecord | SnapshotRecord> = [];
  const ends: number[] = [];
  let pos = 0;
  while (buf.length - pos >= FRAME) {
    const len = buf.readUInt32LE(pos);
    // A zero length is what a zero-filled tail (size extended, data lost in a
    // power cut) looks like; no real record is empty.
    if (len < 2 || len > MAX_RECORD || buf.length - pos - FRAME < len) break;
    const payload = buf.subarray(pos + FRAME, pos + FRAME + len);
    if (crc32(payload) !== buf.readUInt32LE(pos + 4)) break;
    let record: unknown;
    try {
      record = JSON.parse(payload.toString('utf8'));
    } catch {
      break;
    }
    if (typeof record !== 'object' || record === null) break;
    records.push(record as ChangeRecord | SnapshotRecord);
    pos += FRAME + len;
    ends.push(pos);
  }
  return { records, used: pos, ends };
}

export function isSnapshot(record: ChangeRecord | SnapshotRecord): record is SnapshotRecord {
  return (record as SnapshotRecord).s === 1;
}
