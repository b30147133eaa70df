// A separate OS process allocating from one pool, as parallel CNI plugins or
// several hosts would. Usage:
//   node alloc-worker.js STORE_URL POOL_ID COUNT TAG START_AT_MS [churn]
// Waits until START_AT_MS so every worker starts at once; with "churn" it
// releases each address (by owner, as CNI DEL) after taking the next one.
// Prints {"allocated": [...], "released": [...]} on stdout.
import { openStore } from '../../store/index.js';
import { Ipam } from '../../ipam/index.js';

const [url, poolId, countText, tag, startAt, mode] = process.argv.slice(2);
if (!url || !poolId || !countText || !tag || !startAt) {
  console.error('usage: alloc-worker.js STORE_URL POOL_ID COUNT TAG START_AT_MS [churn]');
  process.exit(2);
}
const store = await openStore(url);
try {
  const ipam = new Ipam({ store, hostId: `host-${tag}` });
  const allocated: string[] = [];
  const released: string[] = [];
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
  for (let i = 0; i < Number(countText); i++) {
    const r = await ipam.requestAddress(poolId, { owner: { containerId: `${tag}-${i}`, ifName: 'eth0' } });
    allocated.push(r.address);
    if (mode === 'churn' && i > 0) {
      for (const a of await ipam.releaseByOwner({ containerId: `${tag}-${i - 1}`, ifName: 'eth0' })) released.push(a.address);
    }
  }
  process.stdout.write(JSON.stringify({ allocated, released }));
} finally {
  await store.close();
}
