// Shared test plumbing: a fresh store (a local one in a temp dir, or an empty
// real etcd or Redis), removed afterwards, and a snapshot of every key so tests can show a failed call wrote nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { openStore } from '../../store/index.js';
import type { Store } from '../../store/types.js';
import { isStrandError, type ErrorCode } from '../../common/errors.js';
import { type TestServer, startEtcd, startRedis } from '../support/servers.js';

export interface TempStore {
  store: Store;
  dir: string;
  url: string;
  cleanup(): Promise<void>;
}

export async function tempLocalStore(): Promise<TempStore> {
  const dir = mkdtempSync(join(tmpdir(), 'strand-ipam-'));
  const url = `local://${dir}`;
  let store: Store;
  try {
    store = await openStore(url);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    store,
    dir,
    url,
    async cleanup() {
      try {
        await store.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Every key with its value and modRevision. */
export async function dump(store: Store): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const kv of await store.list('')) out[kv.key] = `${kv.modRevision}:${kv.value}`;
  return out;
}

/** Asserts that `fn` rejects with a StrandError of `code` whose message matches, and that the store is unchanged. */
export async function rejectsCleanly(store: Store, fn: () => Promise<unknown>, code: ErrorCode, message: RegExp): Promise<void> {
  const before = await dump(store);
  const revBefore = await store.revision();
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(isStrandError(err, code), `expected StrandError '${code}', got ${String((err as Error)?.stack ?? err)}`);
    assert.match(err.message, message);
    return true;
  });
  assert.deepEqual(await dump(store), before, 'the store changed');
  assert.equal(await store.revision(), revBefore, 'the store revision moved');
}

/** A store backend the functional tests run on: one server per suite, an empty store per test. */
export interface Backend {
  name: string;
  before(): Promise<void>;
  after(): Promise<void>;
  fresh(): Promise<TempStore>;
}

function serverBackend(name: string, start: () => Promise<TestServer>): Backend {
  let server: TestServer | undefined;
  return {
    name,
    async before() {
      server = await start();
    },
    async after() {
      await server?.stop();
      server = undefined;
    },
    async fresh() {
      const url = server!.url;
      const store = await openStore(url);
      try {
        for (const kv of await store.list('')) await store.delete(kv.key);
      } catch (err) {
        await store.close();
        throw err;
      }
      return { store, url, dir: '', cleanup: () => store.close() };
    },
  };
}

export const BACKENDS: Backend[] = [
  { name: 'local store', before: async () => {}, after: async () => {}, fresh: tempLocalStore },
  serverBackend('etcd', startEtcd),
  serverBackend('redis', startRedis),
];
