// The embedded store: one append-only log file per directory, shared by any
// number of processes.
//
// - Writers take flock(LOCK_EX) on DIR/lock, catch up with the log, append
//   one framed record and fdatasync before acknowledging. Cost per write is
//   one append plus one sync, whatever the store's size.
// - Readers take no lock: records are appended whole and checksummed, so a
//   reader stops at a record still being written and sees it next time.
// - Each process keeps an in-memory index and catches up by reading only the
//   log's new tail (file size), or everything after a compaction (new inode).
// - Compaction writes a snapshot (state + recent history) to a temp file,
//   fsyncs it, renames it over the log and fsyncs the directory; a kill -9 at
//   any point leaves either the old complete log or the new one.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { StrandError, isStrandError } from '../common/errors.js';
import type {
  DeleteOptions, KeyValue, Lease, PutOptions, Store, TxnCheck, TxnOp, TxnResult, WatchEvent, WatchOptions, Watcher,
} from './types.js';
import { MAGIC, encodeRecord, isSnapshot, parseRecords, type ChangeRecord, type LogOp } from './local-log.js';
import { LocalIndex, diffEvents, toKeyValue } from './local-index.js';
import { lock, unlock } from './local-lock.js';
import {
  checkHolds, checkKey, checkRevision, checkTtl, checkTxn, conflict, describeCheck,
} from './validate.js';

const DATA = 'data';
const LOCK = 'lock';
const COMPACT_TMP = 'data.compact';
const DEFAULT_COMPACT_BYTES = 8 << 20;
/** Revisions of history a compaction keeps, so watchers a little behind lose nothing. */
const KEEP_HISTORY = 1000;
const POLL_MS = 50;

export interface LocalStoreOptions {
  compactBytes?: number;
}

interface LocalWatch {
  prefix: string;
  nextRev: number;
  onEvent: (event: WatchEvent) => void;
  active: boolean;
}

function ioError(what: string, err: unknown): StrandError {
  const code = (err as NodeJS.ErrnoException).code;
  // Full disk or quota: the same request can succeed once space is freed.
  const retry = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EAGAIN';
  return new StrandError(retry ? 'unavailable' : 'internal', `local store: ${what}: ${(err as Error).message}`, { cause: err });
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export class LocalStore implements Store {
  readonly url: string;
  private readonly dataPath: string;
  private readonly compactBytes: number;
  private lockFd = -1;
  private fd = -1;
  private ino = 0;
  /** End of the valid records read so far. */
  private offset = 0;
  /** Where the snapshot record ends: the log proper starts there. */
  private snapshotEnd = 0;
  private index = new LocalIndex();
  private readonly watchers = new Set<LocalWatch>();
  private pollTimer: NodeJS.Timeout | undefined;
  private expiring = false;
  /** Serializes this process's writes to this store; flock serializes across processes. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(readonly dir: string, url: string, options: LocalStoreOptions) {
    this.url = url;
    this.dataPath = path.join(dir, DATA);
    this.compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES;
  }

  static async open(dir: string, url: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const store = new LocalStore(dir, url, options);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      store.lockFd = fs.openSync(path.join(dir, LOCK), 'a', 0o600);
    } catch (err) {
      throw ioError(`cannot open directory ${dir} (is it writable?)`, err);
    }
    if (!fs.existsSync(store.dataPath)) {
      await lock(store.lockFd, true);
      try {
        if (!fs.existsSync(store.dataPath)) store.writeFile(new LocalIndex());
      } finally {
        unlock(store.lockFd);
      }
    }
    store.catchUp();
    return store;
  }

  // --- log reading -------------------------------------------------------

  /** Brings the index up to date with the log: its new tail, or all of it after a compaction. */
  private catchUp(): void {
    this.assertOpen();
    let ino: number;
    try {
      ino = fs.statSync(this.dataPath).ino;
    } catch (err) {
      throw ioError(`cannot read ${this.dataPath}`, err);
    }
    if (ino !== this.ino) {
      this.reload();
      return;
    }
    const size = fs.fstatSync(this.fd).size;
    if (size <= this.offset) return;
    const buf = Buffer.allocUnsafe(size - this.offset);
    const n = fs.readSync(this.fd, buf, 0, buf.length, this.offset);
    const { records, used } = parseRecords(buf.subarray(0, n));
    for (const rec of records) {
      if (isSnapshot(rec)) throw new StrandError('internal', `local store ${this.dataPath}: snapshot in the middle of the log`);
      this.index.apply(rec);
    }
    this.offset += used;
  }

  /** Reads the whole (new) log file; watchers whose history was compacted away get the difference. */
  private reload(): void {
    const fd = fs.openSync(this.dataPath, 'r+');
    let next: LocalIndex;
    let offset: number;
    let snapshotEnd: number;
    let ino: number;
    try {
      ino = fs.fstatSync(fd).ino;
      const buf = fs.readFileSync(fd);
      if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
        throw new StrandError('internal', `${this.dataPath} is not a strand store log; move it away`);
      }
      const { records, used, ends } = parseRecords(buf.subarray(MAGIC.length));
      const first = records[0];
      if (!first || !isSnapshot(first)) {
        throw new StrandError('internal', `${this.dataPath} has no snapshot record; move it away`);
      }
      next = LocalIndex.fromSnapshot(first);
      snapshotEnd = MAGIC.length + ends[0]!;
      for (const rec of records.slice(1)) {
        if (isSnapshot(rec)) throw new StrandError('internal', `${this.dataPath}: snapshot in the middle of the log`);
        next.apply(rec);
      }
      offset = MAGIC.length + used;
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    const prev = this.index;
    for (const w of this.watchers) {
      if (w.active && w.nextRev <= next.histBase && w.nextRev <= next.rev) {
        this.deliver(w, diffEvents(prev, next, w.prefix));
        w.nextRev = next.rev + 1;
      }
    }
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = fd;
    this.ino = ino;
    this.offset = offset;
    this.snapshotEnd = snapshotEnd;
    this.index = next;
  }

  /** Writes a fresh log holding a snapshot of `ix` and makes it the store's log, durably. */
  private writeFile(ix: LocalIndex): void {
    const tmp = path.join(this.dir, COMPACT_TMP);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      const snap = encodeRecord(ix.snapshot(KEEP_HISTORY));
      fs.writeSync(fd, Buffer.concat([MAGIC, snap]));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.dataPath);
    fsyncDir(this.dir);
  }

  // --- writing -------------------------------------------------------------

  /**
   * Runs `build` under the store lock on an up-to-date index with expired
   * leases already ended, appends the records it returns and syncs them.
   * `build` may throw (e.g. conflict); the lease expiry is written anyway.
   */
  private mutate<T>(build: (now: number) => { records: ChangeRecord[]; result: T }): Promise<T> {
    const run = async (): Promise<T> => {
      this.assertOpen();
      await lock(this.lockFd, true);
      let failure: unknown;
      let result: T | undefined;
      try {
        this.catchUp();
        const size = fs.fstatSync(this.fd).size;
        // Anything past the valid records is a dead writer's torn tail.
        if (size > this.offset) fs.ftruncateSync(this.fd, this.offset);
        const now = Date.now();
        const records: ChangeRecord[] = [];
        const expiry = this.index.expiryRecord(now);
        if (expiry) {
          this.index.apply(expiry);
          records.push(expiry);
        }
        try {
          const built = build(now);
          result = built.result;
          for (const rec of built.records) {
            this.index.apply(rec);
            records.push(rec);
          }
        } catch (err) {
          failure = err;
        }
        if (records.length > 0) this.append(records);
        if (this.offset - this.snapshotEnd > Math.max(this.compactBytes, this.snapshotEnd)) this.compact();
      } catch (err) {
        // The index may be ahead of the disk now: rebuild it from the file.
        this.ino = 0;
        failure = isStrandError(err) ? err : ioError('write failed', err);
      } finally {
        unlock(this.lockFd);
      }
      this.dispatch();
      if (failure !== undefined) throw failure;
      return result as T;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private append(records: ChangeRecord[]): void {
    const buf = Buffer.concat(records.map(encodeRecord));
    try {
      let done = 0;
      while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done, this.offset + done);
      fs.fdatasyncSync(this.fd);
    } catch (err) {
      try {
        fs.ftruncateSync(this.fd, this.offset);
      } catch {
        // The next writer truncates the torn tail anyway.
      }
      throw ioError(`cannot append to ${this.dataPath}`, err);
    }
    this.offset += buf.length;
  }

  private compact(): void {
    this.writeFile(this.index);
    const fd = fs.openSync(this.dataPath, 'r+');
    fs.closeSync(this.fd);
    this.fd = fd;
    const st = fs.fstatSync(fd);
    this.ino = st.ino;
    this.offset = st.size;
    this.snapshotEnd = st.size;
    try {
      fs.rmSync(path.join(this.dir, COMPACT_TMP), { force: true });
    } catch {
      // Only a leftover name; the next compaction overwrites it.
    }
  }

  // --- Store ----------------------------------------------------------------

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    this.catchUp();
    const e = this.index.get(key, Date.now());
    return e && toKeyValue(key, e);
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<number> {
    checkKey(key);
    checkRevision(options.expectRevision, `put "${key}": expectRevision`);
    if (typeof value !== 'string') throw new StrandError('invalid', `value for "${key}" must be a string`);
    return this.mutate((now) => {
      const cur = this.index.get(key, now);
      if (options.expectRevision !== undefined && (cur?.mod ?? 0) !== options.expectRevision) {
        throw conflict(`put "${key}": expected revision ${options.expectRevision}, found ${cur?.mod ?? 'none'}`);
      }
      if (options.lease !== undefined && !this.index.liveLease(options.lease, now)) {
        throw new StrandError('not-found', `lease ${options.lease} has expired or does not exist; grant a new one`);
      }
      const rev = this.index.rev + 1;
      const op: LogOp = options.lease ? [key, value, options.lease] : [key, value];
      return { records: [{ r: rev, o: [op] }], result: rev };
    });
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
    checkKey(key);
    checkRevision(options.expectRevision, `delete "${key}": expectRevision`);
    return this.mutate((now) => {
      const cur = this.index.get(key, now);
      if (options.expectRevision !== undefined && (cur?.mod ?? 0) !== options.expectRevision) {
        throw conflict(`delete "${key}": expected revision ${options.expectRevision}, found ${cur?.mod ?? 'none'}`);
      }
      if (!cur) return { records: [], result: false };
      return { records: [{ r: this.index.rev + 1, o: [[key]] }], result: true };
    });
  }

  async list(prefix: string): Promise<KeyValue[]> {
    this.catchUp();
    return this.index.list(prefix, Date.now());
  }

  async txn(checks: TxnCheck[], ops: TxnOp[]): Promise<TxnResult> {
    checkTxn(checks, ops);
    return this.mutate((now) => {
      for (const check of checks) {
        if (!checkHolds(check, this.index.get(check.key, now)?.mod ?? 0)) throw conflict(`transaction: ${describeCheck(check)}`);
      }
      for (const op of ops) {
        if (op.op === 'put' && op.lease !== undefined && !this.index.liveLease(op.lease, now)) {
          throw new StrandError('not-found', `lease ${op.lease} has expired or does not exist; grant a new one`);
        }
      }
      // Deletes of absent keys change nothing and take no revision.
      const logOps: LogOp[] = [];
      for (const op of ops) {
        if (op.op === 'put') logOps.push(op.lease ? [op.key, op.value, op.lease] : [op.key, op.value]);
        else if (this.index.get(op.key, now)) logOps.push([op.key]);
      }
      if (logOps.length === 0) return { records: [], result: { revision: this.index.rev } };
      const rev = this.index.rev + 1;
      return { records: [{ r: rev, o: logOps }], result: { revision: rev } };
    });
  }

  async revision(): Promise<number> {
    this.catchUp();
    return this.index.rev;
  }

  async watch(prefix: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<Watcher> {
    checkRevision(options.fromRevision, 'watch fromRevision');
    this.catchUp();
    const from = options.fromRevision ?? this.index.rev + 1;
    if (from <= this.index.histBase) {
      throw new StrandError(
        'invalid',
        `watch from revision ${from}: history up to revision ${this.index.histBase} has been compacted; list and watch from revision ${this.index.rev + 1}`,
      );
    }
    const w: LocalWatch = { prefix, nextRev: Math.max(from, 1), onEvent, active: true };
    this.watchers.add(w);
    this.startPolling();
    // Past events go out on the next turn, after the caller has its Watcher.
    setImmediate(() => this.dispatch());
    return {
      cancel: async () => {
        w.active = false;
        this.watchers.delete(w);
        if (this.watchers.size === 0) this.stopPolling();
      },
    };
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    checkTtl(ttlSeconds);
    const id = randomBytes(8).toString('hex');
    await this.mutate((now) => ({ records: [{ g: [[id, ttlSeconds, now + ttlSeconds * 1000]] }], result: undefined }));
    return {
      id,
      ttlSeconds,
      renew: () =>
        this.mutate((now) => {
          if (!this.index.liveLease(id, now)) throw new StrandError('not-found', `lease ${id} has expired; grant a new one and put its keys again`);
          return { records: [{ g: [[id, ttlSeconds, now + ttlSeconds * 1000]] }], result: undefined };
        }),
      revoke: () =>
        this.mutate(() => {
          const lease = this.index.leases.get(id);
          if (!lease) return { records: [], result: undefined };
          const ops: LogOp[] = [...lease.keys].map((k): LogOp => [k]);
          return { records: [ops.length > 0 ? { r: this.index.rev + 1, o: ops, x: [id] } : { x: [id] }], result: undefined };
        }),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const w of this.watchers) w.active = false;
    this.watchers.clear();
    this.stopPolling();
    await this.queue;
    this.closed = true;
    if (this.fd >= 0) fs.closeSync(this.fd);
    if (this.lockFd >= 0) fs.closeSync(this.lockFd);
    this.fd = this.lockFd = -1;
  }

  // --- watch delivery ----------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new StrandError('invalid', `store ${this.url} is closed`);
  }

  private deliver(w: LocalWatch, events: WatchEvent[]): void {
    for (const ev of events) {
      if (!w.active) return;
      const key = ev.type === 'put' ? ev.kv.key : ev.key;
      if (!key.startsWith(w.prefix)) continue;
      try {
        w.onEvent(ev);
      } catch (err) {
        // A watcher's bug must not break the store or other watchers.
        console.error(`strand store: watch callback for "${w.prefix}" threw:`, err);
      }
    }
  }

  private dispatch(): void {
    const { history, rev } = this.index;
    for (const w of this.watchers) {
      if (!w.active || w.nextRev > rev) continue;
      for (let i = this.index.historyIndex(w.nextRev); i < history.length && w.active; i++) {
        this.deliver(w, history[i]!.events);
        w.nextRev = history[i]!.rev + 1;
      }
      w.nextRev = Math.max(w.nextRev, rev + 1);
    }
  }

  private startPolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** Picks up other processes' writes, and ends expired leases so watchers see their keys go. */
  private poll(): void {
    if (this.closed) return;
    try {
      this.catchUp();
      this.dispatch();
    } catch (err) {
      console.error('strand store: watch poll failed:', err);
      return;
    }
    if (!this.expiring && this.index.hasExpiredLease(Date.now())) {
      this.expiring = true;
      this.mutate(() => ({ records: [], result: undefined }))
        .catch((err) => console.error('strand store: ending expired leases failed:', err))
        .finally(() => {
          this.expiring = false;
        });
    }
  }
}
