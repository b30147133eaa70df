// Runs one iptables tool inside a network namespace. Node's spawn forks from
// the calling thread synchronously, so a child spawned while the thread is
// inside the namespace lives there; stdin is written and exit awaited after
// the thread is back home.
import { spawn, type ChildProcess } from 'node:child_process';
import { StrandError } from '../common/errors.js';
import { withNetns, type NetNs } from '../netlink/index.js';

export interface ToolResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** A stuck xtables lock or kernel must not hang strand forever. */
const TIMEOUT_MS = 60_000;

export function runTool(ns: NetNs | undefined, cmd: string, args: string[], input?: string): Promise<ToolResult> {
  const start = (): ChildProcess => spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let child: ChildProcess;
  try {
    child = ns ? withNetns(ns, start) : start();
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') reject(new StrandError('unavailable', `${cmd} not found: install Debian's "iptables" package`, { cause: e }));
      else reject(new StrandError('kernel', `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? (signal ? 128 : -1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    // A child that died early closes stdin; its exit status tells the story.
    child.stdin!.on('error', () => {});
    child.stdin!.end(input ?? '');
  });
}
