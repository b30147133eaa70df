// Deletes links off the caller's thread. Each link deletion makes the kernel
// wait for an RCU grace period (about 16 ms here) inside the netlink call,
// which would hold a daemon's whole event loop and the answer it is about to
// give. The reaper hands names to a worker thread that deletes whatever has
// queued up in one group delete (Links.deleteMany: one grace period a batch).
import { Worker } from 'node:worker_threads';

interface Request {
  name: string;
  done: () => void;
  failed: (err: Error) => void;
}

export class LinkReaper {
  private worker: Worker | undefined;
  private queued: Request[] = [];
  private running: Request[] | undefined;
  /** Names queued or being deleted, with the promise that settles when they are gone. */
  private readonly pending = new Map<string, Promise<void>>();

  /**
   * netns: a path to the namespace the links are in; default the namespace
   * of the thread that makes the reaper (the worker starts here, idle, so a
   * later withNetns around a delete cannot move it).
   */
  constructor(private readonly netns?: string) {
    this.worker = this.start();
    this.worker.unref();
  }

  /** Resolves once the link is gone (a missing link counts as gone). */
  delete(name: string): Promise<void> {
    const known = this.pending.get(name);
    if (known) return known;
    const p = new Promise<void>((done, failed) => this.queued.push({ name, done, failed })).finally(() => this.pending.delete(name));
    this.pending.set(name, p);
    this.next();
    return p;
  }

  /** Settles once a deletion of this name asked for earlier is over (at once when none is). */
  async settled(name: string): Promise<void> {
    await this.pending.get(name)?.catch(() => undefined);
  }

  /** Waits for every deletion asked for so far. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }

  async close(): Promise<void> {
    await this.drain();
    await this.worker?.terminate();
    this.worker = undefined;
  }

  private start(): Worker {
    // A worker's thread starts in the namespace of the thread that creates it.
    const w = new Worker(new URL('./link-reaper-worker.js', import.meta.url), { workerData: { netns: this.netns } });
    w.on('message', (msg: { failed: Record<string, string> }) => {
      const batch = this.running ?? [];
      this.running = undefined;
      for (const r of batch) {
        const why = msg.failed[r.name];
        if (why === undefined) r.done();
        else r.failed(new Error(why));
      }
      this.next();
    });
    w.on('error', (err) => {
      // A dead worker fails its batch and everything queued; the next delete starts a new one.
      this.worker = undefined;
      const lost = [...(this.running ?? []), ...this.queued.splice(0)];
      this.running = undefined;
      for (const r of lost) r.failed(err);
    });
    return w;
  }

  private next(): void {
    if (this.running || this.queued.length === 0) {
      // Idle, the worker must not keep a process alive (a command that is done exits).
      if (!this.running) this.worker?.unref();
      return;
    }
    this.running = this.queued.splice(0);
    this.worker ??= this.start();
    this.worker.ref();
    this.worker.postMessage(this.running.map((r) => r.name));
  }
}
