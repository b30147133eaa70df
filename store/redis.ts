// The Redis backend. All state changes run as Lua scripts (redis-scripts.ts),
// sent by EVALSHA with an EVAL fallback when the server has not cached them
// (first use, or after a restart). Commands fail fast while the server is
// unreachable (no offline queue) so callers get 'unavailable', not a hang.
//
// Durability. IPAM hands out an address once its write is acknowledged; if the
// server forgets that write in a crash, a restart hands the address out again.
// Redis's and Debian's default persistence is RDB snapshots only, which forgets
// every write since the last snapshot on kill -9 or power loss. So the store
// checks the server's persistence when it opens (and again after every
// reconnect, which is when a restarted server or a promoted replica shows up)
// and refuses a server that can lose acknowledged writes, unless the URL says
// durability=none. Accepted: appendonly yes with appendfsync always. Redis
// writes and fsyncs the AOF before it sends the replies of the commands it
// holds (beforeSleep flushes the AOF, then writes replies), so an acknowledged
// write is on disk. Refused: appendfsync everysec, which loses up to a second
// or two of acknowledged writes in a crash (and "no", which leaves it to the
// kernel). WAITAOF (Redis 7.2) could make everysec safe per write, but each
// write would then wait for the next once-a-second fsync, and Debian 12's Redis
// is 7.0, which does not have it; so it is not used.

import fs from 'node:fs';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { StrandError, isStrandError } from '../common/errors.js';
import type {
  DeleteOptions, KeyValue, Lease, PutOptions, Store, TxnCheck, TxnOp, TxnResult, WatchEvent, WatchOptions, Watcher,
} from './types.js';
import { isTlsFailure, type RedisStoreConfig } from './url.js';
import * as scripts from './redis-scripts.js';
import { checkKey, checkRevision, checkTtl, checkTxn, conflict, describeCheck } from './validate.js';

const COMMAND_MS = 3000;
/** Events kept in the log stream for watchers that start from a past revision. */
const LOG_LENGTH = 100000;
const WATCH_BLOCK_MS = 1000;
/** How often a store with watchers ends expired leases, so their deletes show up without other writes. */
const SWEEP_MS = 500;
const MAX_SEQ = '18446744073709551615';

interface Script {
  lua: string;
  sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const S = {
  txn: script(scripts.TXN),
  get: script(scripts.GET),
  list: script(scripts.LIST),
  revision: script(scripts.REVISION),
  grant: script(scripts.GRANT),
  renew: script(scripts.RENEW),
  revoke: script(scripts.REVOKE),
};

const AUTH_ERROR = /NOAUTH|WRONGPASS|invalid password|NOPERM/i;
const OPT_OUT = 'add durability=none to the store URL to use it anyway, accepting that a crash can make strand hand out addresses it had already given';

/** Scripts that change state, and so must only run on a server that keeps acknowledged writes. */
const WRITES = new Set<Script>([S.txn, S.grant, S.renew, S.revoke]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readTlsFile(path: string, what: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new StrandError('invalid', `redis store: cannot read ${what} file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export class RedisStore implements Store {
  /** Stop functions of the live watches. */
  private readonly watches = new Set<() => void>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Whether the server's persistence has been checked since the last (re)connect. */
  private durable = false;
  private checking: Promise<void> | undefined;

  private constructor(
    readonly url: string,
    private readonly redis: Redis,
    private readonly options: RedisOptions,
    private readonly prefix: string,
    private readonly durability: RedisStoreConfig['durability'],
  ) {}

  static async open(config: RedisStoreConfig, url: string): Promise<RedisStore> {
    const where: RedisOptions = config.sentinel
      ? {
        sentinels: config.sentinel.hosts.map((h) => ({ host: h.host, port: h.port })),
        name: config.sentinel.masterName,
        role: 'master',
        // Reconnect as soon as a sentinel announces a new master, rather
        // than when the old one's connection finally fails.
        failoverDetector: true,
        sentinelCommandTimeout: COMMAND_MS,
        ...(config.sentinel.auth && config.username !== undefined ? { sentinelUsername: config.username } : {}),
        ...(config.sentinel.auth && config.password !== undefined ? { sentinelPassword: config.password } : {}),
      }
      : { host: config.host!, port: config.port! };
    const options: RedisOptions = {
      ...where,
      db: config.db,
      ...(config.username !== undefined ? { username: config.username } : {}),
      ...(config.password !== undefined ? { password: config.password } : {}),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: COMMAND_MS,
      commandTimeout: COMMAND_MS,
      // Keep reconnecting in the background; calls meanwhile fail at once.
      retryStrategy: (times) => Math.min(100 * times, 1000),
    };
    if (config.tls) {
      options.tls = {
        // SNI takes host names only (RFC 6066); Node warns about an IP and
        // checks the certificate against the host either way.
        ...(config.host !== undefined && net.isIP(config.host) === 0 ? { servername: config.host } : {}),
        ...(config.tls.ca ? { ca: readTlsFile(config.tls.ca, 'CA') } : {}),
        ...(config.tls.cert ? { cert: readTlsFile(config.tls.cert, 'certificate') } : {}),
        ...(config.tls.key ? { key: readTlsFile(config.tls.key, 'key') } : {}),
      };
    }
    const redis = new Redis(options);
    // Each call reports its own failure; but a refused password, a failed
    // TLS handshake or a reset only show up here, while connect() itself
    // just says the connection closed.
    const seen: Error[] = [];
    const collect = (err: Error) => {
      if (seen.length < 20) seen.push(err);
    };
    redis.on('error', collect);
    const store = new RedisStore(url, redis, options, config.prefix, config.durability);
    try {
      await store.bounded('connect', redis.connect());
    } catch (err) {
      redis.disconnect();
      // The first error that names the cause; later ones are the fallout
      // ("Connection is closed", "max retries per request").
      const code = (e: Error) => (e as NodeJS.ErrnoException).code;
      const cause = isStrandError(err) ? undefined
        : seen.find((e) => AUTH_ERROR.test(e.message))
          ?? (config.tls ? seen.find(isTlsFailure) : undefined)
          ?? seen.find((e) => code(e) === 'ECONNRESET' || code(e) === 'ETIMEDOUT');
      const translated = store.translate('connect', cause ?? err);
      if (translated.code !== 'unavailable' || !cause) throw translated;
      // A server that is away refuses the connection (ECONNREFUSED); a reset
      // or a stall after connecting is a mismatch more often than an outage.
      const hint = !config.tls
        ? 'if the server serves TLS only, use rediss:// or tls=1 in the store URL'
        : code(cause) === 'ECONNRESET'
          ? 'the server reset the connection during or right after the TLS handshake: if it requires client certificates, give cert= and key= in the store URL'
          : 'the TLS handshake did not finish: is the server serving TLS on this port?';
      throw new StrandError('unavailable', `${translated.message}; ${hint}`, { cause: translated.cause });
    }
    redis.off('error', collect);
    redis.on('error', () => undefined);
    try {
      await store.ensureDurable();
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    // A reconnect may reach a restarted server or, under Sentinel, another one.
    redis.on('ready', () => {
      store.durable = false;
    });
    return store;
  }

  /** Checks the server's persistence once per connection (see the top of this file). */
  private async ensureDurable(): Promise<void> {
    if (this.durability === 'none' || this.durable) return;
    this.checking ??= this.checkDurability().finally(() => {
      this.checking = undefined;
    });
    await this.checking;
  }

  private async checkDurability(): Promise<void> {
    let reply: string[];
    try {
      // One pattern rather than two names: CONFIG GET takes several only since 7.0.
      reply = (await this.bounded('check persistence', this.redis.call('CONFIG', 'GET', 'append*'))) as string[];
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (err instanceof Error && err.name === 'ReplyError' && /unknown command|NOPERM|no permissions|not allowed|disabled/i.test(msg)) {
        throw new StrandError('invalid', `redis ${this.url}: the server refuses CONFIG GET (${msg}), as managed Redis services that rename or disable CONFIG do, so strand cannot check that it keeps the writes it acknowledges (appendonly yes, appendfsync always); if the provider guarantees that, ${OPT_OUT}`, { cause: err });
      }
      throw this.translate('check persistence', err);
    }
    const config = new Map<string, string>();
    for (let i = 0; i + 1 < reply.length; i += 2) config.set(reply[i]!, reply[i + 1]!);
    const appendonly = config.get('appendonly');
    const appendfsync = config.get('appendfsync');
    const fix = 'set "appendonly yes" and "appendfsync always" in redis.conf (or CONFIG SET appendonly yes, CONFIG SET appendfsync always, CONFIG REWRITE)';
    if (appendonly !== 'yes') {
      throw new StrandError('invalid', `redis ${this.url}: the server can lose writes it has acknowledged: appendonly is ${appendonly ?? 'not reported'} (snapshots only, Redis's and Debian's default), so a crash or kill -9 forgets every write since the last snapshot; ${fix}, or ${OPT_OUT}`);
    }
    if (appendfsync !== 'always') {
      throw new StrandError('invalid', `redis ${this.url}: the server can lose writes it has acknowledged: appendfsync is ${appendfsync ?? 'not reported'}, so a crash loses up to a second or two of acknowledged writes; ${fix.replace('"appendonly yes" and ', '')}, or ${OPT_OUT}`);
    }
    this.durable = true;
  }

  private async bounded<T>(what: string, p: Promise<T>, ms = COMMAND_MS + 500): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StrandError('unavailable', `redis ${this.url}: ${what} timed out; is redis running?`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private translate(what: string, err: unknown): StrandError {
    if (isStrandError(err)) return err;
    // OpenSSL's messages carry newlines; keep the error one line.
    const msg = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ').trim();
    if (AUTH_ERROR.test(msg)) {
      return new StrandError('invalid', `redis ${this.url}: ${what}: access denied (${msg}); check the password in the store URL`, { cause: err });
    }
    if (this.options.tls && isTlsFailure(err)) {
      return new StrandError('invalid', `redis ${this.url}: ${what}: TLS handshake failed (${msg}); check the ca=, cert= and key= files in the store URL against the server's certificate`, { cause: err });
    }
    if (err instanceof Error && err.name === 'ReplyError' && !/^(LOADING|BUSY|MASTERDOWN|TRYAGAIN)/.test(msg)) {
      return new StrandError('internal', `redis ${this.url}: ${what}: ${msg}`, { cause: err });
    }
    return new StrandError('unavailable', `redis ${this.url}: ${what}: cannot reach the server (${msg}); retry when redis is back`, { cause: err });
  }

  /** Runs a script by hash, loading it by EVAL when the server does not know it. */
  private async run(what: string, s: Script, ...args: string[]): Promise<unknown> {
    if (WRITES.has(s)) await this.ensureDurable();
    const argv = [this.prefix, String(LOG_LENGTH), ...args];
    try {
      try {
        return await this.bounded(what, this.redis.evalsha(s.sha, 0, ...argv));
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return await this.bounded(what, this.redis.eval(s.lua, 0, ...argv));
      }
    } catch (err) {
      throw this.translate(what, err);
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const r = (await this.run(`get "${key}"`, S.get, key)) as [string, string, string, string] | null;
    if (!r) return undefined;
    return RedisStore.toKeyValue(key, r[0], r[1], r[2], r[3]);
  }

  private static toKeyValue(key: string, value: string, create: string, mod: string, lease: string): KeyValue {
    const kv: KeyValue = { key, value, createRevision: Number(create), modRevision: Number(mod) };
    if (lease) kv.lease = lease;
    return kv;
  }

  /** Runs the transaction script; returns the revision and the number of keys deleted. */
  private async exec(what: string, checks: TxnCheck[], ops: TxnOp[]): Promise<{ revision: number; deleted: number }> {
    const req = {
      c: checks.map((c) => ('modRevision' in c ? [c.key, 'm', c.modRevision] : [c.key, 'absent' in c ? 'a' : 'p', 0])),
      o: ops.map((o) => (o.op === 'put' ? ['p', o.key, o.value, o.lease ?? ''] : ['d', o.key])),
    };
    const r = (await this.run(what, S.txn, JSON.stringify(req))) as [string, number | string, number];
    if (r[0] === 'conflict') throw conflict(`${what}: ${describeCheck(checks[Number(r[1]) - 1]!)}`);
    if (r[0] === 'nolease') throw new StrandError('not-found', `${what}: lease ${r[1]} has expired or does not exist; grant a new one`);
    return { revision: Number(r[1]), deleted: Number(r[2]) };
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<number> {
    checkKey(key);
    checkRevision(options.expectRevision, `put "${key}": expectRevision`);
    const checks: TxnCheck[] = options.expectRevision === undefined ? [] : [{ key, modRevision: options.expectRevision }];
    const op: TxnOp = options.lease !== undefined ? { op: 'put', key, value, lease: options.lease } : { op: 'put', key, value };
    return (await this.exec(`put "${key}"`, checks, [op])).revision;
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
    checkKey(key);
    checkRevision(options.expectRevision, `delete "${key}": expectRevision`);
    const checks: TxnCheck[] = options.expectRevision === undefined ? [] : [{ key, modRevision: options.expectRevision }];
    return (await this.exec(`delete "${key}"`, checks, [{ op: 'delete', key }])).deleted > 0;
  }

  async list(prefix: string): Promise<KeyValue[]> {
    const r = (await this.run(`list "${prefix}"`, S.list, prefix)) as string[];
    const out: KeyValue[] = [];
    for (let i = 0; i + 4 < r.length; i += 5) out.push(RedisStore.toKeyValue(r[i]!, r[i + 1]!, r[i + 2]!, r[i + 3]!, r[i + 4]!));
    return out;
  }

  async txn(checks: TxnCheck[], ops: TxnOp[]): Promise<TxnResult> {
    checkTxn(checks, ops);
    return { revision: (await this.exec('transaction', checks, ops)).revision };
  }

  async revision(): Promise<number> {
    return Number(await this.run('revision', S.revision));
  }

  async watch(prefix: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<Watcher> {
    checkRevision(options.fromRevision, 'watch fromRevision');
    const current = await this.revision();
    const from = Math.max(options.fromRevision ?? current + 1, 1);
    const logKey = `${this.prefix}log`;
    if (from <= current) {
      // Every revision logs at least one event, so history from `from` is
      // complete exactly when the stream still holds its first one.
      const first = (await this.bounded('watch', this.redis.xrange(logKey, `${from}-0`, '+', 'COUNT', 1)).catch((err) => {
        throw this.translate('watch', err);
      })) as Array<[string, string[]]>;
      if (first[0]?.[0] !== `${from}-0`) {
        throw new StrandError('invalid', `watch from revision ${from}: that history has been trimmed; list and watch from revision ${current + 1}`);
      }
    }
    // Blocking reads need a connection of their own.
    const conn = new Redis({ ...this.options, lazyConnect: true, commandTimeout: WATCH_BLOCK_MS + COMMAND_MS });
    conn.on('error', () => undefined);
    let active = true;
    let lastId = `${from - 1}-${MAX_SEQ}`;
    let lastRev = from - 1;
    let lastSeq = -1;
    const stop = (err?: Error) => {
      if (!active) return;
      active = false;
      this.watches.delete(plainStop);
      if (this.watches.size === 0) this.stopSweep();
      conn.disconnect();
      if (err) options.onError?.(err);
    };
    const plainStop = () => stop();
    this.watches.add(plainStop);
    this.startSweep();
    const loop = async () => {
      while (active) {
        let res: Array<[string, Array<[string, string[]]>]> | null;
        try {
          if (conn.status === 'wait') await conn.connect();
          res = (await conn.xread('COUNT', 1000, 'BLOCK', WATCH_BLOCK_MS, 'STREAMS', logKey, lastId)) as typeof res;
        } catch {
          // Server away: ioredis reconnects; resume from lastId when it is back.
          if (active) await sleep(200);
          continue;
        }
        for (const [id, fields] of res?.[0]?.[1] ?? []) {
          if (!active) return;
          const dash = id.indexOf('-');
          const rev = Number(id.slice(0, dash));
          const seq = Number(id.slice(dash + 1));
          const contiguous = (rev === lastRev && seq === lastSeq + 1) || (rev === lastRev + 1 && seq === 0);
          if (!contiguous) {
            stop(new StrandError('invalid', `watch on "${prefix}" fell behind the trimmed event log at revision ${lastRev}; list and watch again`));
            return;
          }
          lastId = id;
          lastRev = rev;
          lastSeq = seq;
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
          const key = f.k!;
          if (!key.startsWith(prefix)) continue;
          const event: WatchEvent =
            f.t === 'd'
              ? { type: 'delete', key, modRevision: rev }
              : { type: 'put', kv: RedisStore.toKeyValue(key, f.v!, f.c!, String(rev), f.l ?? '') };
          try {
            onEvent(event);
          } catch (err) {
            console.error(`strand store: watch callback for "${prefix}" threw:`, err);
          }
        }
      }
    };
    void loop();
    return { cancel: async () => plainStop() };
  }

  private startSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => {
      this.revision().catch(() => undefined); // the script's purge is the sweep
    }, SWEEP_MS);
  }

  private stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    checkTtl(ttlSeconds);
    const id = String(await this.run('grant lease', S.grant, String(ttlSeconds)));
    return {
      id,
      ttlSeconds,
      renew: async () => {
        if (Number(await this.run(`renew lease ${id}`, S.renew, id)) !== 1) {
          throw new StrandError('not-found', `lease ${id} has expired; grant a new one and put its keys again`);
        }
      },
      revoke: async () => {
        await this.run(`revoke lease ${id}`, S.revoke, id);
      },
    };
  }

  async close(): Promise<void> {
    for (const stop of [...this.watches]) stop();
    this.stopSweep();
    this.redis.disconnect();
  }
}
