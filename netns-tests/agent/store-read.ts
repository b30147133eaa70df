// Reads the cluster store straight, for tests that check what strand left
// in it: prints the keys under a prefix with their values as JSON.
// usage (inside a host's namespace, STRAND_STORE set): node store-read.js PREFIX
import { openStore } from '../../store/index.js';

const [prefix = ''] = process.argv.slice(2);
const store = await openStore(process.env.STRAND_STORE);
try {
  const kvs = await store.list(prefix);
  const parsed = (v: string): unknown => {
    try {
      return JSON.parse(v);
    } catch {
      return v; // some keys hold a bare id
    }
  };
  console.log(JSON.stringify(kvs.map((kv) => ({ key: kv.key, value: parsed(kv.value) }))));
} finally {
  await store.close();
}
