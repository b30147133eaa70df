// The one key-value interface everything above store/ uses. Three backends
// implement it: local (embedded, the default), etcd and redis.
//
// Revisions are store-wide and increase with every committed change, as in
// etcd: a key's `modRevision` is the revision of the change that last wrote it.
// Compare-and-swap names the modRevision the caller last saw; 0 means "the key
// must not exist".

export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the change that created this key. */
  createRevision: number;
  /** Revision of the change that last wrote this key. */
  modRevision: number;
  /** Lease the key is attached to, if any. */
  lease?: string;
}

export interface PutOptions {
  /** Only write if the key's modRevision equals this (0: only if absent). */
  expectRevision?: number;
  /** Attach the key to a lease: it vanishes when the lease expires. */
  lease?: string;
}

export interface DeleteOptions {
  /** Only delete if the key's modRevision equals this. */
  expectRevision?: number;
}

/** A condition a transaction checks before applying its operations. */
export type TxnCheck =
  | { key: string; modRevision: number } // equals; 0 means absent
  | { key: string; absent: true }
  | { key: string; present: true };

export type TxnOp =
  | { op: 'put'; key: string; value: string; lease?: string }
  | { op: 'delete'; key: string };

export interface TxnResult {
  /** The store revision the transaction committed at. */
  revision: number;
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue }
  | { type: 'delete'; key: string; modRevision: number };

export interface WatchOptions {
  /** Deliver every change with revision >= this, including past ones still kept. */
  fromRevision?: number;
  /**
   * Called if the watch ends on its own (the history it still needed was
   * compacted away, or the server cancelled it); no events follow. List and
   * watch again from the current revision to resynchronize.
   */
  onError?: (err: Error) => void;
}

export interface Watcher {
  /** Stops delivering events and releases the watch. */
  cancel(): Promise<void>;
}

export interface Lease {
  readonly id: string;
  readonly ttlSeconds: number;
  /** Renews the lease once; throws not-found if it has already expired. */
  renew(): Promise<void>;
  /** Ends the lease now, deleting its keys. */
  revoke(): Promise<void>;
}

export interface Store {
  /** The URL this store was opened with (credentials removed). */
  readonly url: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** Writes a key; returns the new store revision. Throws StrandError 'conflict' when expectRevision does not match. */
  put(key: string, value: string, options?: PutOptions): Promise<number>;
  /** Deletes a key; returns whether it existed. Throws 'conflict' when expectRevision does not match. */
  delete(key: string, options?: DeleteOptions): Promise<boolean>;
  /** All keys under a prefix, sorted by key. */
  list(prefix: string): Promise<KeyValue[]>;
  /** Applies all ops atomically if every check holds; otherwise throws 'conflict' and changes nothing. */
  txn(checks: TxnCheck[], ops: TxnOp[]): Promise<TxnResult>;
  /** The current store revision. */
  revision(): Promise<number>;
  /** Calls onEvent for every change under prefix, in revision order. */
  watch(prefix: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<Watcher>;
  /** A lease of ttlSeconds; keys put with it vanish when it is not renewed in time. */
  grantLease(ttlSeconds: number): Promise<Lease>;
  close(): Promise<void>;
}
