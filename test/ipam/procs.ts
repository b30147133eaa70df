// Runs allocator worker processes at the same time and collects what each
// got; every process it starts is killed by stopAll(), even after a failure.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'alloc-worker.js');

export interface WorkerResult {
  allocated: string[];
  released: string[];
}

export class Workers {
  private readonly children = new Set<ChildProcess>();

  /** Starts n workers on one pool together; resolves with their results in order. */
  async run(url: string, poolId: string, n: number, count: number, churn = false): Promise<WorkerResult[]> {
    // Far enough ahead that every process has loaded before the first allocation.
    const startAt = Date.now() + 1500;
    const runs = Array.from({ length: n }, (_, i) => this.one([url, poolId, String(count), `w${i}`, String(startAt), ...(churn ? ['churn'] : [])]));
    return Promise.all(runs);
  }

  private one(args: string[]): Promise<WorkerResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.children.add(child);
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        this.children.delete(child);
        if (code !== 0) return reject(new Error(`worker ${args[3]} exited with ${code}: ${err.trim()}`));
        try {
          resolve(JSON.parse(out) as WorkerResult);
        } catch (e) {
          reject(new Error(`worker ${args[3]} printed no result: ${out} ${err}`, { cause: e }));
        }
      });
    });
  }

  /** Kills whatever is still running and waits for it to exit. */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.children].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('close', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    this.children.clear();
  }
}

/** Addresses that occur more than once. */
export function duplicates(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const a of addresses) (seen.has(a) ? dup : seen).add(a);
  return [...dup];
}
