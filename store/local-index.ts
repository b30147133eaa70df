// The local store's in-memory state: the keys, the leases and the recent
// history, rebuilt from a snapshot and advanced by applying change records in
// log order. Every process keeps its own copy and catches up from the log.

import { StrandError } from '../common/errors.js';
import type { KeyValue, WatchEvent } from './types.js';
import type { ChangeRecord, LogEvent, LogOp, SnapshotRecord } from './local-log.js';
import { SortedKeys } from './sorted-keys.js';

export interface Entry {
  value: string;
  create: number;
  mod: number;
  lease?: string;
}

export interface LeaseInfo {
  ttl: number;
  /** Expiry, ms since the epoch (wall clock, so every process agrees). */
  exp: number;
  keys: Set<string>;
}

export interface HistoryEntry {
  rev: number;
  events: WatchEvent[];
  /** About what the entry takes in a snapshot (characters of its keys and values, plus framing). */
  size: number;
}

/** The snapshot size of one revision's events, near enough to bound history by. */
function eventsSize(events: WatchEvent[]): number {
  let n = 16;
  for (const ev of events) n += ev.type === 'delete' ? ev.key.length + 8 : ev.kv.key.length + ev.kv.value.length + (ev.kv.lease?.length ?? 0) + 24;
  return n;
}

export function toKeyValue(key: string, e: Entry): KeyValue {
  return { key, value: e.value, createRevision: e.create, modRevision: e.mod, ...(e.lease ? { lease: e.lease } : {}) };
}

export class LocalIndex {
  rev = 0;
  /** History is complete for revisions above this one. */
  histBase = 0;
  readonly kv = new Map<string, Entry>();
  /** The keys of `kv` in order, for prefix listing. */
  keys = new SortedKeys();
  readonly leases = new Map<string, LeaseInfo>();
  history: HistoryEntry[] = [];
  /** Sum of `size` over `history`. */
  historySize = 0;

  static fromSnapshot(s: SnapshotRecord): LocalIndex {
    const ix = new LocalIndex();
    ix.rev = s.r;
    ix.histBase = s.b;
    for (const [id, ttl, exp] of s.ls) ix.leases.set(id, { ttl, exp, keys: new Set() });
    for (const [key, value, create, mod, lease] of s.kv) {
      ix.kv.set(key, { value, create, mod, ...(lease ? { lease } : {}) });
      if (lease) ix.leases.get(lease)?.keys.add(key);
    }
    ix.keys = SortedKeys.from(ix.kv.keys());
    ix.history = s.h.map(([rev, logEvents]) => {
      const events = logEvents.map((ev): WatchEvent =>
        ev.length === 1
          ? { type: 'delete', key: ev[0], modRevision: rev }
          : { type: 'put', kv: { key: ev[0], value: ev[1], createRevision: ev[2], modRevision: rev, ...(ev[3] ? { lease: ev[3] } : {}) } },
      );
      const size = eventsSize(events);
      ix.historySize += size;
      return { rev, events, size };
    });
    return ix;
  }

  /** Whether a key is readable now: keys of an expired lease are gone even before a writer deletes them. */
  visible(e: Entry, now: number): boolean {
    if (e.lease === undefined) return true;
    const lease = this.leases.get(e.lease);
    return lease !== undefined && lease.exp > now;
  }

  get(key: string, now: number): Entry | undefined {
    const e = this.kv.get(key);
    return e && this.visible(e, now) ? e : undefined;
  }

  /** Readable keys under a prefix, sorted. */
  list(prefix: string, now: number): KeyValue[] {
    const out: KeyValue[] = [];
    for (const key of this.keys.withPrefix(prefix)) {
      const e = this.kv.get(key)!;
      if (this.visible(e, now)) out.push(toKeyValue(key, e));
    }
    return out;
  }

  liveLease(id: string, now: number): LeaseInfo | undefined {
    const lease = this.leases.get(id);
    return lease && lease.exp > now ? lease : undefined;
  }

  /** The record that ends every lease expired by `now`, deleting its keys; undefined when none has. */
  expiryRecord(now: number): ChangeRecord | undefined {
    const ended: string[] = [];
    const ops: LogOp[] = [];
    for (const [id, lease] of this.leases) {
      if (lease.exp > now) continue;
      ended.push(id);
      for (const key of lease.keys) ops.push([key]);
    }
    if (ended.length === 0) return undefined;
    return ops.length > 0 ? { r: this.rev + 1, o: ops, x: ended } : { x: ended };
  }

  hasExpiredLease(now: number): boolean {
    for (const lease of this.leases.values()) if (lease.exp <= now) return true;
    return false;
  }

  apply(rec: ChangeRecord): void {
    for (const [id, ttl, exp] of rec.g ?? []) {
      const lease = this.leases.get(id);
      if (lease) {
        lease.ttl = ttl;
        lease.exp = exp;
      } else {
        this.leases.set(id, { ttl, exp, keys: new Set() });
      }
    }
    if (rec.o && rec.o.length > 0) {
      const rev = rec.r!;
      if (rev !== this.rev + 1) {
        throw new StrandError('internal', `local store log is out of order: revision ${rev} after ${this.rev}`);
      }
      const events: WatchEvent[] = [];
      for (const op of rec.o) {
        const key = op[0];
        const prev = this.kv.get(key);
        if (prev?.lease) this.leases.get(prev.lease)?.keys.delete(key);
        if (op.length === 1) {
          if (!prev) continue;
          this.kv.delete(key);
          this.keys.delete(key);
          events.push({ type: 'delete', key, modRevision: rev });
        } else {
          const lease = op[2];
          const entry: Entry = { value: op[1], create: prev ? prev.create : rev, mod: rev, ...(lease ? { lease } : {}) };
          this.kv.set(key, entry);
          if (!prev) this.keys.add(key);
          if (lease) this.leases.get(lease)?.keys.add(key);
          events.push({ type: 'put', kv: toKeyValue(key, entry) });
        }
      }
      this.rev = rev;
      const size = eventsSize(events);
      this.history.push({ rev, events, size });
      this.historySize += size;
    }
    for (const id of rec.x ?? []) this.leases.delete(id);
  }

  /**
   * A snapshot of the current state keeping the most recent history that
   * fits in keepSize (see HistoryEntry.size), whole revisions only; trims
   * this index's history to match. Bounding by size rather than by count
   * keeps a store whose values are large from carrying a thousand copies.
   */
  snapshot(keepSize: number): SnapshotRecord {
    let drop = 0;
    let size = this.historySize;
    while (drop < this.history.length && size > keepSize) size -= this.history[drop++]!.size;
    if (drop > 0) {
      this.histBase = Math.max(this.histBase, this.history[drop - 1]!.rev);
      this.history = this.history.slice(drop);
      this.historySize = size;
    }
    const base = this.histBase;
    const kv: SnapshotRecord['kv'] = [];
    for (const [key, e] of this.kv) kv.push(e.lease ? [key, e.value, e.create, e.mod, e.lease] : [key, e.value, e.create, e.mod]);
    return {
      s: 1,
      r: this.rev,
      b: base,
      kv,
      ls: [...this.leases].map(([id, l]) => [id, l.ttl, l.exp]),
      h: this.history.map(({ rev, events }) => [
        rev,
        events.map((ev): LogEvent =>
          ev.type === 'delete'
            ? [ev.key]
            : ev.kv.lease
              ? [ev.kv.key, ev.kv.value, ev.kv.createRevision, ev.kv.lease]
              : [ev.kv.key, ev.kv.value, ev.kv.createRevision],
        ),
      ]),
    };
  }

  /** Position of the first history entry with revision >= rev. */
  historyIndex(rev: number): number {
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.history[mid]!.rev < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Events that take a watcher of `prefix` from state `from` to state `to`, for
 * when the history between them was compacted away: puts of changed keys (in
 * modRevision order) and deletes of vanished ones.
 */
export function diffEvents(from: LocalIndex, to: LocalIndex, prefix: string): WatchEvent[] {
  const puts: WatchEvent[] = [];
  const deletes: WatchEvent[] = [];
  for (const [key, e] of to.kv) {
    if (!key.startsWith(prefix)) continue;
    const old = from.kv.get(key);
    if (!old || old.mod !== e.mod) puts.push({ type: 'put', kv: toKeyValue(key, e) });
  }
  for (const key of from.kv.keys()) {
    if (key.startsWith(prefix) && !to.kv.has(key)) deletes.push({ type: 'delete', key, modRevision: to.rev });
  }
  puts.sort((a, b) => (a.type === 'put' && b.type === 'put' ? a.kv.modRevision - b.kv.modRevision : 0));
  return [...puts, ...deletes];
}
