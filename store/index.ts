// Opens the store a URL names. etcd and Redis backends are imported only when
// their URL is used, so a CNI plugin on the local store never loads grpc.

import type { Store } from './types.js';
import { DEFAULT_STORE_URL, parseStoreUrl, redactUrl } from './url.js';
import { LocalStore } from './local.js';

export type * from './types.js';
export { parseStoreUrl, redactUrl, DEFAULT_STORE_URL } from './url.js';

/** The store for `url`, else $STRAND_STORE, else local:///var/lib/strand. */
export async function openStore(url?: string): Promise<Store> {
  const chosen = url ?? (process.env.STRAND_STORE || DEFAULT_STORE_URL);
  const config = parseStoreUrl(chosen);
  const safeUrl = redactUrl(chosen);
  switch (config.kind) {
    case 'local':
      return LocalStore.open(config.dir, safeUrl, config.compactBytes !== undefined ? { compactBytes: config.compactBytes } : {});
    case 'etcd': {
      const { EtcdStore } = await import('./etcd.js');
      return EtcdStore.open(config, safeUrl);
    }
    case 'redis': {
      const { RedisStore } = await import('./redis.js');
      return RedisStore.open(config, safeUrl);
    }
  }
}
