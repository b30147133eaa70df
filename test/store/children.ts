// Spawns child-writer processes and guarantees they are gone when a test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./child-writer.js', import.meta.url));
const running = new Set<ChildProcess>();

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startChild(args: string[]): { child: ChildProcess; done: Promise<ChildResult>; output: () => string } {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<ChildResult>((resolve) => {
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done, output: () => stdout };
}

export async function runChild(args: string[]): Promise<ChildResult> {
  const result = await startChild(args).done;
  if (result.code !== 0) throw new Error(`child ${args.join(' ')} failed (${result.code ?? result.signal}): ${result.stderr}`);
  return result;
}

/** Kills every child still running; for after/afterEach hooks. */
export async function killChildren(): Promise<void> {
  const waits = [...running].map((c) => new Promise<void>((resolve) => {
    c.once('close', () => resolve());
    c.kill('SIGKILL');
  }));
  await Promise.all(waits);
}
