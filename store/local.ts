// The embedded store: one append-only log file per directory, shared by any
// number of processes.
//
// - Writers take flock(LOCK_EX) on DIR/lock, catch up with the log, append
//   one framed record and fdatasync before acknowledging. Cost per write is
//   one append plus one sync, whatever the store's size.
// - Readers take no lock: records are appended whole and checksummed, so a
//   reader stops at a record still being written and sees it next time. (A
//   bad record that could be a live writer's is judged under a shared lock,
//   taken only if free at once.)
// - Waiting for the lock polls a non-blocking flock on a timer, bounded by
//   lockTimeoutMs, so it occupies no libuv worker thread.
// - Each process keeps an in-memory index and catches up by reading only the
//   log's new tail (file size), or everything after a compaction (new inode).
// - Compaction writes a snapshot (state + recent history, bounded by size) to
//   a temp file, fsyncs it, renames it over the log and fsyncs the directory;
//   a kill -9 at any point leaves either the old complete log or the new one.
// - A damaged log (a bad record with valid ones after it, or a complete bad
//   last record) is refused, naming the byte offset, never cut short: only a
//   dead writer's torn tail is truncated. salvageLocalStore copies what is
//   intact into a new store.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { StrandError, isStrandError } from '../common/errors.js';
import type {
  DeleteOptions, KeyValue, Lease, PutOptions, Store, TxnCheck, TxnOp, TxnResult, WatchEvent, WatchOptions, Watcher,
} from './types.js';
import {
  MAGIC, encodeRecord, isSnapshot, parseRecords, scanRecords, type ChangeRecord, type Damage, type LogOp,
} from './local-log.js';
import { LocalIndex, diffEvents, toKeyValue } from './local-index.js';
import { DEFAULT_LOCK_TIMEOUT_MS, lock, tryLock, unlock, type LockWait } from '../common/file-lock.js';
import {
  checkHolds, checkKey, checkRevision, checkTtl, checkTxn, conflict, describeCheck,
} from './validate.js';

const DATA = 'data';
const LOCK = 'lock';
const COMPACT_TMP = 'data.compact';
const DEFAULT_COMPACT_BYTES = 8 << 20;
/**
 * History a compaction keeps, so watchers a little behind lose nothing: the
 * newest revisions whose keys and values add up to at most this (thousands of
 * revisions of small writes, a few of large ones).
 */
const DEFAULT_HISTORY_BYTES = 1 << 20;
const POLL_MS = 50;
const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;

export interface LocalStoreOptions {
  /** Log bytes after the snapshot that trigger compaction; default 8 MiB. */
  compactBytes?: number;
  /** History a compaction keeps, in bytes of keys and values; default 1 MiB. */
  historyBytes?: number;
  /** How long a write waits for another process's store lock before 'unavailable' naming its pid; default 30 s. */
  lockTimeoutMs?: number;
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

/**
 * Refuses a directory on procfs or sysfs (by name, or through a symlink):
 * there mkdir fails with ENOENT at every level, which recursive mkdir
 * retries forever.
 */
function checkStoreDir(dir: string): void {
  const abs = path.resolve(dir);
  const refuse = (how: string) =>
    new StrandError('invalid', `local store directory ${dir} is ${how}, a kernel file system that cannot hold a store; use a directory on a disk, e.g. /var/lib/strand`);
  const top = /^\/(proc|sys)(?:\/|$)/.exec(abs);
  if (top) throw refuse(`under /${top[1]}`);
  let existing = abs;
  while (existing !== '/' && !fs.existsSync(existing)) existing = path.dirname(existing);
  let type: number;
  try {
    type = Number(fs.statfsSync(existing).type);
  } catch {
    return; // mkdir will say what is wrong
  }
  if (type === PROC_SUPER_MAGIC) throw refuse(`on procfs (through ${existing})`);
  if (type === SYSFS_MAGIC) throw refuse(`on sysfs (through ${existing})`);
}

/** Writes a fresh log holding a snapshot of `ix` as DIR/data, durably: temp file, fsync, rename, fsync of the directory. */
function writeLog(dir: string, ix: LocalIndex, historyBytes: number): void {
  const tmp = path.join(dir, COMPACT_TMP);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    const snap = encodeRecord(ix.snapshot(historyBytes));
    fs.writeSync(fd, Buffer.concat([MAGIC, snap]));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(dir, DATA));
  fsyncDir(dir);
}

function damagedError(dataPath: string, dir: string, d: Damage): StrandError {
  const where = d.kind === 'corrupt'
    ? `, and valid records follow it (the next at byte offset ${d.nextValid})`
    : ', and it is the last record, complete, so not a write cut short';
  return new StrandError(
    'internal',
    `local store ${dataPath} is damaged: the record at byte offset ${d.offset} ${d.reason}${where}. ` +
      `Refusing to use it rather than drop acknowledged writes; copy every intact record to a new store with ` +
      `"strand store salvage --store local://${dir} --out NEW_DIR", check it, then put NEW_DIR in place of ${dir}`,
    { retryable: false },
  );
}

export class LocalStore implements Store {
  readonly url: string;
  private readonly dataPath: string;
  private readonly compactBytes: number;
  private readonly historyBytes: number;
  private readonly lockPath: string;
  private readonly lockWait: LockWait;
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
  /** The last watch-poll failure logged, so a persistent one is logged once. */
  private pollError = '';

  private constructor(readonly dir: string, url: string, options: LocalStoreOptions) {
    this.url = url;
    this.dataPath = path.join(dir, DATA);
    this.compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES;
    this.historyBytes = options.historyBytes ?? DEFAULT_HISTORY_BYTES;
    this.lockPath = path.join(dir, LOCK);
    this.lockWait = { path: this.lockPath, timeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS };
  }

  static async open(dir: string, url: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    checkStoreDir(dir);
    const store = new LocalStore(dir, url, options);
    try {
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
        store.lockFd = fs.openSync(store.lockPath, 'a', 0o600);
      } catch (err) {
        throw ioError(`cannot open directory ${dir} (is it writable?)`, err);
      }
      if (!fs.existsSync(store.dataPath)) {
        await lock(store.lockFd, true, store.lockWait);
        try {
          if (!fs.existsSync(store.dataPath)) writeLog(store.dir, new LocalIndex(), store.historyBytes);
        } finally {
          unlock(store.lockFd);
        }
      }
      const damage = store.readNew();
      if (damage && damage.kind !== 'torn') {
        // Maybe a live writer's record half-written; look again under the lock.
        await lock(store.lockFd, false, store.lockWait);
        try {
          store.catchUp(true);
        } finally {
          unlock(store.lockFd);
        }
      }
    } catch (err) {
      store.closeFds();
      throw err;
    }
    return store;
  }

  // --- log reading -------------------------------------------------------

  /**
   * Brings the index up to date with the log. Damage past the valid records
   * throws, except a torn tail (the next writer truncates it); without the
   * lock (`locked` false) a bad last record may be a live writer's, so that
   * is judged only if the shared lock can be had at once, and otherwise on a
   * later call.
   */
  private catchUp(locked = false): void {
    this.assertOpen();
    const damage = this.readNew();
    if (!damage || damage.kind === 'torn') return;
    if (locked) throw damagedError(this.dataPath, this.dir, damage);
    if (!tryLock(this.lockFd, false)) return;
    try {
      const again = this.readNew();
      if (again && again.kind !== 'torn') throw damagedError(this.dataPath, this.dir, again);
    } finally {
      unlock(this.lockFd);
    }
  }

  /** Applies what is new in the log (its new tail, or all of it after a compaction); returns what is wrong past the valid records. */
  private readNew(): Damage | undefined {
    let ino: number;
    try {
      ino = fs.statSync(this.dataPath).ino;
    } catch (err) {
      throw ioError(`cannot read ${this.dataPath}`, err);
    }
    if (ino !== this.ino) return this.reload();
    const size = fs.fstatSync(this.fd).size;
    if (size <= this.offset) return undefined;
    const buf = Buffer.allocUnsafe(size - this.offset);
    const n = fs.readSync(this.fd, buf, 0, buf.length, this.offset);
    const { records, used, damage } = parseRecords(buf.subarray(0, n), this.offset);
    for (const rec of records) {
      if (isSnapshot(rec)) throw new StrandError('internal', `local store ${this.dataPath}: snapshot in the middle of the log`);
      this.index.apply(rec);
    }
    this.offset += used;
    return damage;
  }

  /** Reads the whole (new) log file; watchers whose history was compacted away get the difference. */
  private reload(): Damage | undefined {
    const fd = fs.openSync(this.dataPath, 'r+');
    let next: LocalIndex;
    let offset: number;
    let snapshotEnd: number;
    let ino: number;
    let damage: Damage | undefined;
    try {
      ino = fs.fstatSync(fd).ino;
      const buf = fs.readFileSync(fd);
      if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
        throw new StrandError('internal', `${this.dataPath} is not a strand store log; move it away`);
      }
      const parsed = parseRecords(buf.subarray(MAGIC.length), MAGIC.length);
      const { records, used, ends } = parsed;
      damage = parsed.damage;
      const first = records[0];
      // A log file appears whole (written aside, then renamed), so a bad
      // first record is never a torn tail.
      if (!first && damage) throw damagedError(this.dataPath, this.dir, { ...damage, kind: damage.kind === 'torn' ? 'suspect' : damage.kind });
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
    return damage;
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
      await lock(this.lockFd, true, this.lockWait);
      let failure: unknown;
      let result: T | undefined;
      try {
        // Throws on damage, so what is left past the valid records is a dead writer's torn tail.
        this.catchUp(true);
        const size = fs.fstatSync(this.fd).size;
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
    writeLog(this.dir, this.index, this.historyBytes);
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
      // As etcd says it (see EtcdStore), with the revisions.
      throw new StrandError(
        'invalid',
        `local store ${this.url}: watch "${prefix}": required revision ${from} has been compacted (history is kept after revision ${this.index.histBase}); list and watch from the current revision (${this.index.rev + 1})`,
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
    this.closeFds();
  }

  private closeFds(): void {
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
      this.pollError = '';
    } catch (err) {
      const text = String((err as Error)?.message ?? err);
      if (text !== this.pollError) console.error('strand store: watch poll failed:', err);
      this.pollError = text;
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

// --- salvage ------------------------------------------------------------------

export interface SalvageReport {
  /** The damaged log, only read. */
  source: string;
  /** The new store's log. */
  out: string;
  /** Records replayed into the new store (the snapshot counts as one). */
  kept: number;
  /** Byte ranges of the source that held no valid record. */
  skipped: Array<{ offset: number; length: number; reason: string }>;
  /** Valid records that could not be replayed (out of order, or a second snapshot). */
  unusable: Array<{ offset: number; reason: string }>;
  /** Whether the source's first record, the snapshot, was lost (then only the changes after it are in the new store). */
  snapshotLost: boolean;
  /** Revisions whose changes were lost with a skipped record: keys they wrote keep an older value or are missing. */
  missingRevisions: Array<[number, number]>;
  /** The new store's revision and number of keys. */
  revision: number;
  keys: number;
}

/**
 * Copies every intact record of the local store in `sourceDir` into a new
 * store in `outDir` (which must not exist or be empty), replaying them in log
 * order over a skipped one, and says what it kept and skipped, at which
 * offsets. The source is only read (no lock taken, nothing written there).
 * The new log holds one snapshot and no history: watchers list afresh.
 */
export function salvageLocalStore(sourceDir: string, outDir: string): SalvageReport {
  const source = path.join(sourceDir, DATA);
  const src = path.resolve(sourceDir);
  const dst = path.resolve(outDir);
  if (src === dst || dst.startsWith(`${src}/`)) {
    throw new StrandError('invalid', `salvage writes a new store: ${outDir} must be outside ${sourceDir}`);
  }
  checkStoreDir(outDir);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(source);
  } catch (err) {
    throw ioError(`cannot read ${source}`, err);
  }
  if (fs.existsSync(dst) && fs.readdirSync(dst).length > 0) {
    throw new StrandError('exists', `salvage writes a new store: ${outDir} exists and is not empty; name a new directory`);
  }
  const headerOk = buf.length >= MAGIC.length && buf.subarray(0, MAGIC.length).equals(MAGIC);
  const { records, skipped } = scanRecords(buf.subarray(Math.min(MAGIC.length, buf.length)), Math.min(MAGIC.length, buf.length));
  if (!headerOk) skipped.unshift({ offset: 0, length: Math.min(MAGIC.length, buf.length), reason: 'is not the store header' });
  if (records.length === 0) throw new StrandError('invalid', `${source} holds no intact record of a strand store log; nothing to salvage`);

  const first = records[0]!;
  const snapshotLost = !(first.offset === MAGIC.length && isSnapshot(first.record));
  let ix = new LocalIndex();
  let kept = 0;
  const unusable: SalvageReport['unusable'] = [];
  const missingRevisions: SalvageReport['missingRevisions'] = [];
  for (const [i, { offset, record }] of records.entries()) {
    if (isSnapshot(record)) {
      if (i === 0 && !snapshotLost) {
        ix = LocalIndex.fromSnapshot(record);
        kept++;
      } else {
        unusable.push({ offset, reason: 'a snapshot record after the start of the log' });
      }
      continue;
    }
    if (record.o && record.o.length > 0) {
      const rev = record.r;
      if (typeof rev !== 'number' || rev <= ix.rev) {
        unusable.push({ offset, reason: `revision ${String(rev)} is not after revision ${ix.rev}` });
        continue;
      }
      if (rev > ix.rev + 1) {
        // A lost record's revisions; carry on from the next one we have.
        if (!(snapshotLost && ix.rev === 0 && kept === 0)) missingRevisions.push([ix.rev + 1, rev - 1]);
        ix.rev = rev - 1;
      }
    }
    try {
      ix.apply(record);
      kept++;
    } catch (err) {
      unusable.push({ offset, reason: (err as Error).message });
    }
  }
  const revision = ix.rev;
  const keys = ix.kv.size;
  try {
    fs.mkdirSync(dst, { recursive: true, mode: 0o755 });
    writeLog(dst, ix, 0);
  } catch (err) {
    throw ioError(`cannot write the new store in ${outDir}`, err);
  }
  return { source, out: path.join(dst, DATA), kept, skipped, unusable, snapshotLost, missingRevisions, revision, keys };
}
