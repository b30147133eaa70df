// The etcd backend: the Store interface maps one to one onto etcd's model
// (store-wide revisions, modRevision compares in transactions, watch from a
// revision, leases). The work here is bounding every call in time and
// translating etcd3's errors into StrandError codes.

import fs from 'node:fs';
import {
  Etcd3, EtcdAuthenticationFailedError, EtcdInvalidAuthTokenError, EtcdLeaseInvalidError, EtcdPermissionDeniedError, GRPCResourceExhastedError,
  GRPCUnauthenticatedError, isRecoverableError, type IOptions, type IKeyValue, type Lease as EtcdLease, type Watcher as EtcdWatcher,
  type PutBuilder, type IWatchResponse, type ICompare,
} from 'etcd3';
import { StrandError, isStrandError } from '../common/errors.js';
import type {
  DeleteOptions, KeyValue, Lease, PutOptions, Store, TxnCheck, TxnOp, TxnResult, WatchEvent, WatchOptions, Watcher,
} from './types.js';
import { isTlsFailure, type EtcdStoreConfig } from './url.js';
import { checkKey, checkRevision, checkTtl, checkTxn, conflict, describeCheck } from './validate.js';

/** Deadline of one unary call; a dead server fails in this time instead of hanging. */
const CALL_MS = 3000;
/** Bound on calls etcd3 runs as streams (lease keepalive, watch creation), which get no deadline. */
const STREAM_MS = 5000;

/**
 * Largest key plus value (or sum over a transaction) sent in one request.
 * etcd refuses requests over --max-request-bytes, 1.5 MiB by default ("request
 * is too large"), and its grpc server drops ones 512 KiB beyond that
 * (RESOURCE_EXHAUSTED); the margin covers the request's own framing.
 */
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024 - 4096;
/**
 * Keys per list page at first. Responses are bounded by the client: grpc-js
 * refuses to receive a message over 4 MiB (RESOURCE_EXHAUSTED); a page that
 * hits that is fetched again at half the size, down to one key, which always
 * fits (a value is at most MAX_REQUEST_BYTES).
 */
const LIST_PAGE_KEYS = 1000;

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

/** A policy that runs the call once: we want errors, not etcd3's circuit breaker holding a host shut. */
const once = { execute: (fn: (ctx: unknown) => unknown) => Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 0 })) } as unknown as Policy;

/** Tries each host once (etcd3 picks the next host per attempt) when the error is a connection failure. */
function failover(hosts: number): Policy {
  return {
    execute: async (fn: (ctx: unknown) => unknown) => {
      let last: unknown;
      for (let attempt = 0; attempt < hosts; attempt++) {
        try {
          return await fn({ signal: new AbortController().signal, attempt });
        } catch (err) {
          // A request refused for its size fails the same way on every host.
          if (!(err instanceof Error) || !isRecoverableError(err) || err instanceof GRPCResourceExhastedError) throw err;
          last = err;
        }
      }
      throw last;
    },
  } as unknown as Policy;
}

function readTlsFile(path: string, what: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new StrandError('invalid', `etcd store: cannot read ${what} file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export class EtcdStore implements Store {
  /** Stop functions of the live watches. */
  private readonly watches = new Set<() => Promise<void>>();

  private constructor(
    readonly url: string,
    private readonly client: Etcd3,
    private readonly tls: boolean,
    private readonly auth: boolean,
  ) {}

  static async open(config: EtcdStoreConfig, url: string): Promise<EtcdStore> {
    const scheme = config.tls ? 'https' : 'http';
    const options: IOptions = {
      hosts: config.hosts.map((h) => `${scheme}://${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`),
      dialTimeout: CALL_MS,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_MS }),
      faultHandling: { host: () => once, global: failover(config.hosts.length) },
    };
    if (config.username !== undefined && config.password !== undefined) {
      // A factory, so each token request (the first call, and again whenever
      // the token expires or the server restarts) gets a fresh deadline.
      options.auth = { username: config.username, password: config.password, callOptions: () => ({ deadline: Date.now() + CALL_MS }) };
    }
    if (config.tls) {
      // grpc needs a root certificate buffer; without ca= use the system bundle.
      const ca = config.tls.ca ? readTlsFile(config.tls.ca, 'CA') : readTlsFile('/etc/ssl/certs/ca-certificates.crt', 'system CA');
      options.credentials = {
        rootCertificate: ca,
        ...(config.tls.cert ? { certChain: readTlsFile(config.tls.cert, 'certificate') } : {}),
        ...(config.tls.key ? { privateKey: readTlsFile(config.tls.key, 'key') } : {}),
      };
    }
    return new EtcdStore(url, new Etcd3(options), config.tls !== undefined, options.auth !== undefined);
  }

  /**
   * A unary call. etcd keeps auth tokens in memory: a restart or the token's
   * TTL ends them; etcd3 fetches a new token when the server refuses the one
   * it has for a unary call (not for a stream).
   */
  private async renewToken(what: string): Promise<void> {
    await this.call(`${what} (new auth token)`, () => this.client.get('\0').exec(), CALL_MS + 500);
  }

  /** Runs one etcd call, bounded in time, with its errors translated. */
  private async call<T>(what: string, fn: () => Promise<T>, boundMs = STREAM_MS): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StrandError('unavailable', `etcd ${this.url}: ${what} timed out after ${boundMs} ms; is etcd running?`)),
        boundMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      throw this.translate(what, err);
    } finally {
      clearTimeout(timer);
    }
  }

  private translate(what: string, err: unknown): StrandError {
    if (isStrandError(err)) return err;
    // OpenSSL's messages carry newlines; keep the error one line.
    const msg = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ').trim();
    if (err instanceof EtcdLeaseInvalidError) return new StrandError('not-found', `etcd: ${what}: lease has expired or does not exist; grant a new one`, { cause: err });
    if (err instanceof EtcdAuthenticationFailedError || err instanceof GRPCUnauthenticatedError || err instanceof EtcdPermissionDeniedError) {
      return new StrandError('invalid', `etcd ${this.url}: ${what}: access denied (${msg}); check the user and password in the store URL`, { cause: err });
    }
    if (/user name is empty/.test(msg)) {
      return new StrandError('invalid', `etcd ${this.url}: ${what}: the server has authentication enabled (${msg}); give user:password@ in the store URL`, { cause: err });
    }
    // Size limits and a full database are RESOURCE_EXHAUSTED (or, for a
    // request just over the limit, INVALID_ARGUMENT): retrying the same
    // request cannot succeed, so none of them may read as "unavailable".
    if (/grpc: received message larger than max|request is too large|trying to send message larger than max/i.test(msg)) {
      return new StrandError('invalid', `etcd ${this.url}: ${what}: the request is larger than the server accepts (${msg}); etcd limits a request to --max-request-bytes (1.5 MiB by default): store less under one key`, { cause: err });
    }
    if (/Received message larger than max/.test(msg)) {
      return new StrandError('internal', `etcd ${this.url}: ${what}: the server's answer is larger than the client accepts (${msg}); a single value over 4 MiB cannot be read`, { cause: err, retryable: false });
    }
    if (/database space exceeded|NOSPACE/i.test(msg)) {
      return new StrandError('unavailable', `etcd ${this.url}: ${what}: the etcd database is full (${msg}); an operator must compact and defragment it and clear the alarm (etcdctl compact, etcdctl defrag, etcdctl alarm disarm) or raise --quota-backend-bytes`, { cause: err, retryable: false });
    }
    if (err instanceof GRPCResourceExhastedError && !/too many requests/i.test(msg)) {
      return new StrandError('internal', `etcd ${this.url}: ${what}: the server ran out of a resource (${msg})`, { cause: err, retryable: false });
    }
    if (this.tls && isTlsFailure(err)) {
      return new StrandError('invalid', `etcd ${this.url}: ${what}: TLS handshake failed (${msg}); check the ca=, cert= and key= files in the store URL against the server's certificate`, { cause: err });
    }
    if ((err instanceof Error && isRecoverableError(err)) || /unavailable|deadline|no connection|ECONNREFUSED|connect/i.test(msg)) {
      // A TLS-only server drops a plain connection the way grpc reports as
      // "Failed to connect"; a server that is away refuses it (ECONNREFUSED).
      // A plain server closes or resets a TLS client's connection during the
      // handshake.
      const hint = !this.tls && /Failed to connect/.test(msg)
        ? '; if the server serves TLS only, add ?tls=1&ca=FILE to the store URL'
        : this.tls && /before secure TLS connection was established|ECONNRESET/.test(msg)
          ? '; the server closed the connection during the TLS handshake: if it does not serve TLS, remove tls=1 from the store URL'
          : '';
      return new StrandError('unavailable', `etcd ${this.url}: ${what}: cannot reach the server (${msg}); retry when etcd is back${hint}`, { cause: err });
    }
    if (/compacted/.test(msg)) return new StrandError('invalid', `etcd: ${what}: ${msg}; list and watch from the current revision`, { cause: err });
    return new StrandError('internal', `etcd ${this.url}: ${what}: ${msg}`, { cause: err });
  }

  private static toKeyValue(kv: IKeyValue): KeyValue {
    const out: KeyValue = {
      key: kv.key.toString('utf8'),
      value: kv.value.toString('utf8'),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
    };
    if (kv.lease && kv.lease !== '0') out.lease = kv.lease;
    return out;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const res = await this.call(`get "${key}"`, () => this.client.get(key).exec(), CALL_MS + 500);
    const kv = res.kvs[0];
    return kv && EtcdStore.toKeyValue(kv);
  }

  private putOp(key: string, value: string, lease?: string): PutBuilder {
    const b = this.client.put(key).value(value);
    return lease !== undefined ? b.lease(lease) : b;
  }

  /** Refuses a request etcd would refuse for its size, naming the keys. */
  private static checkSize(what: string, keys: string[], bytes: number): void {
    if (bytes <= MAX_REQUEST_BYTES) return;
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;
    const named = keys.length === 1 ? `key "${keys[0]}"` : `keys ${keys.map((k) => `"${k}"`).join(', ')}`;
    throw new StrandError('invalid', `etcd: ${what}: ${named} and ${keys.length === 1 ? 'its value' : 'their values'} take ${mib(bytes)}; etcd refuses requests over 1.5 MiB (its default --max-request-bytes): store less under one key`);
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<number> {
    checkKey(key);
    checkRevision(options.expectRevision, `put "${key}": expectRevision`);
    EtcdStore.checkSize(`put "${key}"`, [key], Buffer.byteLength(key) * (options.expectRevision === undefined ? 1 : 2) + Buffer.byteLength(value));
    if (options.expectRevision === undefined) {
      const res = await this.call(`put "${key}"`, () => this.putOp(key, value, options.lease).exec());
      return Number(res.header.revision);
    }
    const expect = options.expectRevision;
    const res = await this.call(`put "${key}"`, () =>
      this.client.if(key, 'Mod', '==', expect).then(this.putOp(key, value, options.lease)).commit(),
    );
    if (!res.succeeded) throw conflict(`put "${key}": expected revision ${expect}`);
    return Number(res.header.revision);
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
    checkKey(key);
    checkRevision(options.expectRevision, `delete "${key}": expectRevision`);
    if (options.expectRevision === undefined) {
      const res = await this.call(`delete "${key}"`, () => this.client.delete().key(key).exec());
      return Number(res.deleted) > 0;
    }
    const expect = options.expectRevision;
    const res = await this.call(`delete "${key}"`, () =>
      this.client.if(key, 'Mod', '==', expect).then(this.client.delete().key(key)).commit(),
    );
    if (!res.succeeded) throw conflict(`delete "${key}": expected revision ${expect}`);
    return Number(res.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
  }

  /**
   * All keys under a prefix, in pages of at most `LIST_PAGE_KEYS`, every page
   * read at the revision of the first, so the list is one consistent snapshot
   * however long it is. A compaction between pages restarts the list.
   */
  async list(prefix: string): Promise<KeyValue[]> {
    const what = `list "${prefix}"`;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.listPages(what, prefix);
      } catch (err) {
        if (attempt >= 3 || !isStrandError(err) || !/compacted/.test(err.message)) throw err;
      }
    }
  }

  private async listPages(what: string, prefix: string): Promise<KeyValue[]> {
    const start = prefix === '' ? Buffer.from([0]) : Buffer.from(prefix, 'utf8');
    const end = prefix === '' ? Buffer.from([0]) : EtcdStore.prefixEnd(start);
    const out: KeyValue[] = [];
    let from = start;
    let revision: string | undefined;
    let limit = LIST_PAGE_KEYS;
    for (;;) {
      let res;
      try {
        res = await this.call(what, () => this.client.kv.range({
          key: from,
          range_end: end,
          limit,
          sort_order: 'Ascend',
          sort_target: 'Key',
          ...(revision !== undefined ? { revision } : {}),
        }), CALL_MS + 500);
      } catch (err) {
        // The page was too large to receive: the same page, half as many keys.
        if (limit > 1 && isStrandError(err) && /Received message larger than max/.test(err.message)) {
          limit = Math.max(1, Math.floor(limit / 2));
          continue;
        }
        throw err;
      }
      revision ??= String(res.header.revision);
      for (const kv of res.kvs) out.push(EtcdStore.toKeyValue(kv));
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || !last) return out;
      from = Buffer.concat([last.key, Buffer.from([0])]); // the next key after the last one
    }
  }

  /** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
  private static prefixEnd(prefix: Buffer): Buffer {
    const end = Buffer.from(prefix);
    for (let i = end.length - 1; i >= 0; i--) {
      if (end[i]! < 0xff) {
        end[i]! += 1;
        return end.subarray(0, i + 1);
      }
    }
    return Buffer.from([0]); // all 0xff: to the end of the keyspace
  }

  async txn(checks: TxnCheck[], ops: TxnOp[]): Promise<TxnResult> {
    checkTxn(checks, ops);
    const bytes = checks.reduce((n, c) => n + Buffer.byteLength(c.key) + 16, 0)
      + ops.reduce((n, o) => n + Buffer.byteLength(o.key) + (o.op === 'put' ? Buffer.byteLength(o.value) : 0) + 16, 0);
    EtcdStore.checkSize('transaction', ops.map((o) => o.key), bytes);
    const res = await this.call('transaction', async () =>
      this.client.kv.txn({
        compare: checks.map(EtcdStore.compare),
        success: await Promise.all(
          ops.map((op) => (op.op === 'put' ? this.putOp(op.key, op.value, op.lease) : this.client.delete().key(op.key)).op()),
        ),
        failure: [],
      }),
    );
    if (!res.succeeded) throw conflict(`transaction: one of ${checks.map(describeCheck).join(', ')} failed`);
    return { revision: Number(res.header.revision) };
  }

  /** etcd compares a missing key as version 0 and modRevision 0. */
  private static compare(c: TxnCheck): ICompare {
    const key = Buffer.from(c.key, 'utf8');
    if ('modRevision' in c) return { key, target: 'Mod', result: 'Equal', mod_revision: c.modRevision };
    return { key, target: 'Version', result: 'absent' in c ? 'Equal' : 'Greater', version: 0 };
  }

  async revision(): Promise<number> {
    const res = await this.call('revision', () => this.client.get('\0').exec(), CALL_MS + 500);
    return Number(res.header.revision);
  }

  async watch(prefix: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<Watcher> {
    checkRevision(options.fromRevision, 'watch fromRevision');
    const current = await this.revision();
    const from = Math.max(options.fromRevision ?? current + 1, 1);
    if (from <= current) {
      // etcd would accept the watch and cancel it a moment later; a read at
      // that revision fails the same way (compacted), but up front.
      await this.call(`watch "${prefix}"`, () => this.client.get('\0').revision(from).exec(), CALL_MS + 500);
    }
    const what = `watch "${prefix}"`;
    let next = from; // the first revision not delivered yet
    let active = true;
    let watcher: EtcdWatcher | undefined;

    const end = (err: StrandError) => {
      if (!active) return;
      active = false;
      this.watches.delete(stop);
      if (options.onError) options.onError(err);
      else console.error(`strand store: etcd watch on "${prefix}" ended:`, err.message);
    };
    const stop = async () => {
      if (!active) return;
      active = false;
      this.watches.delete(stop);
      await watcher?.cancel().catch(() => undefined);
    };

    const start = async (): Promise<void> => {
      // Each watch gets a namespace of its own, so a stream of its own: when
      // etcd refuses to create a watch, etcd3 stops creating any more watches
      // on that stream (its attach queue waits forever for an answer to the
      // refused one), which would stall every other watch of this store.
      const w = await this.call(what, () =>
        this.client.namespace('').watch().prefix(prefix).startRevision(String(next)).create(),
      );
      if (!active) {
        await w.cancel().catch(() => undefined);
        return;
      }
      watcher = w;
      w.on('data', (res: IWatchResponse) => {
        if (!active || w !== watcher) return;
        for (const ev of res.events) {
          const kv = ev.kv;
          next = Math.max(next, Number(kv.mod_revision) + 1);
          const event: WatchEvent =
            ev.type === 'Delete'
              ? { type: 'delete', key: kv.key.toString('utf8'), modRevision: Number(kv.mod_revision) }
              : { type: 'put', kv: EtcdStore.toKeyValue(kv) };
          try {
            onEvent(event);
          } catch (err) {
            console.error(`strand store: watch callback for "${prefix}" threw:`, err);
          }
        }
      });
      // etcd3 reconnects and resumes on its own; errors after creation are
      // cancellations, which end the watch (e.g. compaction), except one:
      // etcd3 reconnects with the token it has, and once the server has
      // forgotten that (restart, TTL) it cancels the watch for it. Then a
      // new token, and a new watch on a new stream from the first revision
      // not delivered (the old stream is stuck; it idles until close()).
      w.on('error', (err: Error) => {
        if (!active || w !== watcher) return;
        watcher = undefined;
        if (this.auth && err instanceof EtcdInvalidAuthTokenError) void resume();
        else end(this.translate(what, err));
      });
    };

    const resume = async (): Promise<void> => {
      for (let attempt = 1; active; attempt++) {
        try {
          await this.renewToken(what);
          await start();
          return;
        } catch (err) {
          const e = this.translate(what, err);
          // While the server is away, keep trying, as etcd3 does for a watch.
          if ((e.code !== 'unavailable' && attempt >= 3) || !active) return end(e);
          await new Promise((r) => setTimeout(r, Math.min(200 * attempt, 2000)));
        }
      }
    };

    this.watches.add(stop);
    try {
      await start();
    } catch (err) {
      this.watches.delete(stop);
      throw err;
    }
    return { cancel: stop };
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    checkTtl(ttlSeconds);
    const lease: EtcdLease = this.client.lease(ttlSeconds, { autoKeepAlive: false });
    lease.on('lost', () => undefined); // reported through renew() instead
    const id = await this.call('grant lease', () => lease.grant());
    return {
      id,
      ttlSeconds,
      renew: async () => {
        await this.call(`renew lease ${id}`, () => lease.keepaliveOnce());
      },
      revoke: async () => {
        try {
          await this.call(`revoke lease ${id}`, () => this.client.leaseClient.leaseRevoke({ ID: id }));
        } catch (err) {
          if (!isStrandError(err, 'not-found')) throw err; // already expired: its keys are gone
        }
      },
    };
  }

  async close(): Promise<void> {
    for (const stop of [...this.watches]) await stop();
    this.client.close();
  }
}
