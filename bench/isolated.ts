// Benchmarks that build networks run inside a namespace of their own, so the
// machine's bridges and iptables stay untouched: the runner re-executes the
// benchmark there (nsenter changes only the network namespace) and removes
// the namespace afterwards.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetns, deleteNetns } from '../netlink/index.js';

const INNER = 'STRAND_BENCH_INNER';

export async function runIsolated(name: string, measure: () => Promise<void>): Promise<void> {
  if (process.env[INNER] === name) return measure();
  const ns = `strand-bench-host-${process.pid}`;
  createNetns(ns).close();
  try {
    const runner = join(fileURLToPath(new URL('.', import.meta.url)), 'run.js');
    const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, runner, name], { stdio: 'inherit', env: { ...process.env, [INNER]: name } });
    if (r.status !== 0) process.exitCode = r.status ?? 1;
  } finally {
    deleteNetns(ns);
  }
}
