// The harness every namespace test uses: fresh, uniquely named namespaces and
// links per test, an independent view of the kernel through `ip -j`, and
// cleanup that runs even when the test fails or the run is interrupted.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Netlink, createNetns, deleteNetns, type NetNs } from '../../netlink/index.js';

/** Every name a test makes starts with this, so leaks are easy to find. */
export const TEST_PREFIX = 'sx';

/** A short unique name (fits IFNAMSIZ): "sx" + 5 random characters + tag. */
export function uniqueName(tag = ''): string {
  const name = TEST_PREFIX + randomBytes(4).toString('hex').slice(0, 5) + tag;
  if (Buffer.byteLength(name) > 15) throw new Error(`test name "${name}" too long: shorten the tag`);
  return name;
}

/** Runs a command with an argument array; throws with its stderr when it fails. */
export function run(cmd: string, args: string[], options: { allowFail?: boolean; input?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: options.input ?? '' });
  if (r.error) throw r.error;
  const out = { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  if (out.status !== 0 && !options.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${out.status}): ${out.stderr.trim()}`);
  return out;
}

/** `ip -j [-n NS] ARGS` parsed: the kernel's state as iproute2 sees it, not as strand does. */
export function ipJson<T = Record<string, unknown>>(args: string[], netns?: string): T[] {
  const full = ['-j', ...(netns ? ['-n', netns] : []), ...args];
  const out = run('ip', full).stdout.trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

/** `ip [-n NS] ARGS` for setting up fixtures the way a user would. */
export function ip(args: string[], netns?: string): string {
  return run('ip', [...(netns ? ['-n', netns] : []), ...args]).stdout;
}

export function linkNames(netns?: string): string[] {
  return ipJson<{ ifname: string }>(['link', 'show'], netns).map((l) => l.ifname);
}

type Cleanup = () => void | Promise<void>;

/** What one test made; dispose() removes it all, newest first. */
export class TestBed {
  private readonly cleanups: Cleanup[] = [];
  private readonly sockets: Netlink[] = [];

  /** A new named namespace, removed at the end (with everything inside it). */
  netns(tag = ''): { name: string; ns: NetNs } {
    const name = uniqueName(tag);
    const ns = createNetns(name);
    this.defer(() => {
      ns.close();
      deleteNetns(name);
    });
    return { name, ns };
  }

  /** A netlink handle on a namespace (or the host), closed at the end. */
  netlink(ns?: NetNs): Netlink {
    const nl = Netlink.open(ns);
    this.sockets.push(nl);
    return nl;
  }

  /** A host-side link name that is removed at the end if it still exists. */
  linkName(tag = ''): string {
    const name = uniqueName(tag);
    this.defer(() => {
      run('ip', ['link', 'del', name], { allowFail: true });
    });
    return name;
  }

  /** A child process killed at the end. */
  process(child: ChildProcess): ChildProcess {
    this.defer(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return child;
  }

  tempDir(path: string): string {
    this.defer(() => rmSync(path, { recursive: true, force: true }));
    return path;
  }

  defer(fn: Cleanup): void {
    this.cleanups.push(fn);
  }

  async dispose(): Promise<void> {
    for (const nl of this.sockets.splice(0)) nl.close();
    const errors: unknown[] = [];
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw new AggregateError(errors, `cleanup failed ${errors.length} time(s)`);
  }

  /** Synchronous best effort, for a run killed by a signal. */
  disposeSync(): void {
    for (const nl of this.sockets.splice(0)) nl.close();
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        void fn();
      } catch {
        // keep going: remove as much as possible
      }
    }
  }
}

const live = new Set<TestBed>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const bed of live) bed.disposeSync();
      process.exit(130);
    });
  }
}

/**
 * Gives each test of the enclosing describe() a fresh TestBed, disposed after
 * the test whatever its outcome. Use inside describe(): `const bed = useTestBed();`
 * then `bed().netns()` in a test.
 */
export function useTestBed(): () => TestBed {
  let current: TestBed | undefined;
  hookSignals();
  beforeEach(() => {
    current = new TestBed();
    live.add(current);
  });
  afterEach(async () => {
    const bed = current;
    current = undefined;
    if (!bed) return;
    live.delete(bed);
    await bed.dispose();
  });
  return () => {
    if (!current) throw new Error('useTestBed(): the test bed exists only inside a test');
    return current;
  };
}

/** Names of namespaces and host links that tests made and did not remove. */
export function leftovers(): string[] {
  const ns = run('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(TEST_PREFIX));
  const links = linkNames().filter((n) => n.startsWith(TEST_PREFIX));
  return [...ns.map((n) => `netns ${n}`), ...links.map((n) => `link ${n}`)];
}

/** Polls until probe gives something (not undefined or false); the wait is bounded and named in the error. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
