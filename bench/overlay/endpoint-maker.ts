// Runs inside host A's namespace for the overlay benchmark: creates one
// sandbox + endpoint on the benchmark network per address read from stdin
// and prints the wall-clock times (ms) at which creation started and ended,
// so the parent can time B's first reply against them. "quit" removes them.
// usage (env STRAND_STORE, STRAND_RUN_DIR, STRAND_HOST_ID): node endpoint-maker.js NETWORK
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { openController } from '../../runtime/index.js';

const network = process.argv[2] ?? 'bench';
const wall = (): number => performance.timeOrigin + performance.now();
const c = await openController();
const made: string[] = [];
try {
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'quit') break;
    const name = `bench-${made.length}`;
    const sb = await c.createSandbox({ name });
    made.push(sb.name);
    const t0 = wall();
    await c.connect(network, sb.id, { addresses: [line.trim()] });
    console.log(`${t0} ${wall()}`);
  }
} finally {
  for (const name of made) await c.removeSandbox(name).catch(() => undefined);
  await c.close();
}
