// IPAM benchmark: does the cost of an allocation stay flat as a pool fills,
// and do concurrent allocator processes on one etcd pool never collide?
//
//   ipam_growth_ratio        local store, 20,000 addresses of a /16 one at a
//                            time (each its own durable transaction, as
//                            separate CNI calls make them), then all released;
//                            median of the last 100 allocations / first 100
//   ipam_etcd_allocs_per_s   8 processes x 500 allocations on one etcd pool
//   ipam_etcd_duplicates     addresses handed out more than once (must be 0)
//   ipam_local_pools_growth  local store, 1,000 pools created one at a time:
//                            median time of one requestPool call around 1,000
//                            pools / around 100 (the file size at both, and
//                            its bytes per pool, are printed with it)
//   ipam_local_allocs_per_s  sequential allocations per second on the local store
//
// `--worker URL POOL COUNT TAG START_AT_MS` is the allocator process itself.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../store/index.js';
import { Ipam } from '../ipam/index.js';
import { startEtcd } from '../test/support/servers.js';
import { median, nowMs, report } from './stats.js';

const GROWTH_COUNT = 20_000;
const WINDOW = 100;
const PROCS = 8;
const PER_PROC = 500;
const POOLS = 1000;
const POOL_MARKS = [100, 1000];
/** Calls before each mark whose median is that mark's per-call time. */
const POOL_WINDOW = 50;

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--worker') return worker(args.slice(1));
  const local = await growth();
  const etcd = await etcdContention();
  const pools = await poolGrowth();
  report('ipam_growth_ratio', local.ratio);
  report('ipam_etcd_allocs_per_s', etcd.allocsPerSecond, 0);
  report('ipam_etcd_duplicates', etcd.duplicates);
  report('ipam_local_pools_file_growth', pools.bytesPerPoolRatio);
  report('ipam_local_pools_growth', pools.callRatio);
  report('ipam_local_allocs_per_s', local.allocsPerSecond, 0);
}

async function growth(): Promise<{ ratio: number; allocsPerSecond: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-ipam-'));
  try {
    const store = await openStore(`local://${dir}`);
    try {
      const ipam = new Ipam({ store, hostId: 'bench' });
      const pool = await ipam.requestPool({ subnet: '10.80.0.0/16' });
      const times: number[] = [];
      const addresses: string[] = [];
      const start = nowMs();
      for (let i = 0; i < GROWTH_COUNT; i++) {
        const t0 = nowMs();
        const r = await ipam.requestAddress(pool.id, { owner: { containerId: `c${i}`, ifName: 'eth0' } });
        times.push(nowMs() - t0);
        addresses.push(r.address);
      }
      const elapsed = nowMs() - start;
      if (new Set(addresses).size !== GROWTH_COUNT) throw new Error('the local run handed out an address twice');
      for (const a of addresses) await ipam.releaseAddress(pool.id, a);
      const usage = await ipam.usage(pool.id);
      if (usage.allocated !== 0) throw new Error(`${usage.allocated} addresses still allocated after releasing all`);
      const first = median(times.slice(0, WINDOW));
      const last = median(times.slice(-WINDOW));
      console.log(`# local: first ${WINDOW} median ${first.toFixed(3)} ms, last ${WINDOW} median ${last.toFixed(3)} ms, ${GROWTH_COUNT} in ${(elapsed / 1000).toFixed(1)} s`);
      return { ratio: last / first, allocsPerSecond: (GROWTH_COUNT * 1000) / elapsed };
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PoolGrowthMark {
  pools: number;
  fileBytes: number;
  /** Median of the POOL_WINDOW requestPool calls before the mark, in one open store. */
  callMs: number;
  /** Mean of the same calls (compactions included, which a median hides). */
  meanMs: number;
  /** Opening the store afresh and reading one pool, as a short-lived CNI plugin does. */
  openMs: number;
}

/**
 * Creates POOLS pools (explicit /24s, as `network create --subnet` does) on a
 * local store, one call at a time; at each mark, the data file's size and the
 * median time of the calls just before it.
 */
export async function poolGrowth(): Promise<{ marks: PoolGrowthMark[]; callRatio: number; bytesPerPoolRatio: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-pools-'));
  try {
    const url = `local://${dir}`;
    const store = await openStore(url);
    const marks: PoolGrowthMark[] = [];
    try {
      const ipam = new Ipam({ store, hostId: 'bench' });
      const times: number[] = [];
      for (let i = 0; i < POOLS; i++) {
        const t0 = nowMs();
        await ipam.requestPool({ subnet: `10.${100 + (i >> 8)}.${i & 255}.0/24` });
        times.push(nowMs() - t0);
        if (POOL_MARKS.includes(i + 1)) {
          const opens: number[] = [];
          for (let j = 0; j < 5; j++) {
            const o0 = nowMs();
            const fresh = await openStore(url);
            try {
              await new Ipam({ store: fresh, hostId: 'bench' }).listPools('local');
            } finally {
              await fresh.close();
            }
            opens.push(nowMs() - o0);
          }
          marks.push({ pools: i + 1, fileBytes: statSync(join(dir, 'data')).size, callMs: median(times.slice(-POOL_WINDOW)), meanMs: mean(times.slice(-POOL_WINDOW)), openMs: median(opens) });
        }
      }
    } finally {
      await store.close();
    }
    for (const m of marks) {
      console.log(`# local pools: ${m.pools} pools: file ${(m.fileBytes / 1024).toFixed(1)} KiB (${Math.round(m.fileBytes / m.pools)} B/pool), requestPool median ${m.callMs.toFixed(3)} ms (mean ${m.meanMs.toFixed(3)}), fresh open + listPools ${m.openMs.toFixed(2)} ms`);
    }
    const [a, b] = [marks[0]!, marks[marks.length - 1]!];
    return { marks, callRatio: b.callMs / a.callMs, bytesPerPoolRatio: b.fileBytes / b.pools / (a.fileBytes / a.pools) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

async function etcdContention(): Promise<{ allocsPerSecond: number; duplicates: number }> {
  const etcd = await startEtcd();
  try {
    const store = await openStore(etcd.url);
    try {
      const ipam = new Ipam({ store, hostId: 'bench' });
      const pool = await ipam.requestPool({ subnet: '10.81.0.0/16', space: 'global' });
      const startAt = Date.now() + 2000;
      const runner = join(dirname(fileURLToPath(import.meta.url)), 'run.js');
      const results = await Promise.all(
        Array.from({ length: PROCS }, (_, i) => spawnWorker(runner, [etcd.url, pool.id, String(PER_PROC), `w${i}`, String(startAt)])),
      );
      // Wall time from the common start to the last process's last allocation.
      const elapsed = Math.max(...results.map((r) => r.endedAt)) - startAt;
      const all = results.flatMap((r) => r.addresses);
      const duplicates = all.length - new Set(all).size;
      const usage = await ipam.usage(pool.id);
      if (all.length !== PROCS * PER_PROC || usage.allocated !== all.length) {
        throw new Error(`expected ${PROCS * PER_PROC} allocations, workers got ${all.length}, the pool counts ${usage.allocated}`);
      }
      console.log(`# etcd: ${all.length} allocations by ${PROCS} processes in ${(elapsed / 1000).toFixed(2)} s`);
      return { allocsPerSecond: (all.length * 1000) / elapsed, duplicates };
    } finally {
      await store.close();
    }
  } finally {
    await etcd.stop();
  }
}

interface WorkerOutput {
  addresses: string[];
  endedAt: number;
}

function spawnWorker(runner: string, args: string[]): Promise<WorkerOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runner, 'ipam', '--worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`allocator ${args[3]} exited with ${code}: ${err.trim()}`));
      try {
        resolve(JSON.parse(out) as WorkerOutput);
      } catch (e) {
        reject(new Error(`allocator ${args[3]} printed no result: ${out}`, { cause: e }));
      }
    });
  });
}

async function worker(args: string[]): Promise<void> {
  const [url, poolId, count, tag, startAt] = args;
  if (!url || !poolId || !count || !tag || !startAt) throw new Error('usage: ipam --worker URL POOL COUNT TAG START_AT_MS');
  const store = await openStore(url);
  try {
    const ipam = new Ipam({ store, hostId: `bench-${tag}` });
    await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
    const addresses: string[] = [];
    for (let i = 0; i < Number(count); i++) {
      addresses.push((await ipam.requestAddress(poolId, { owner: { containerId: `${tag}-${i}`, ifName: 'eth0' } })).address);
    }
    const output: WorkerOutput = { addresses, endedAt: Date.now() };
    process.stdout.write(JSON.stringify(output));
  } finally {
    await store.close();
  }
}
