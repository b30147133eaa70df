// `strand daemon`: the per-host agent. For now it reconciles the kernel with
// the store on start, then keeps collecting what killed runs leave behind.
import type { Controller } from '../core/controller.js';
import { parse } from './args.js';

const USAGE = `usage: strand daemon [--gc-interval SECONDS]
`;

export async function daemonCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  const p = parse(argv, { 'gc-interval': { type: 'string' } }, USAGE);
  const seconds = Number(p.values['gc-interval'] ?? 30);
  const c = await ctl();
  const r = await c.reconcile();
  console.log(`strand daemon: restored ${r.restored.length} network(s), removed ${r.removedSandboxes.length} dead sandbox(es) and ${r.removedOrphans.length} orphan(s)`);
  const timer = setInterval(() => {
    c.gcSandboxes().then(
      (removed) => removed.forEach((s) => console.log(`strand daemon: removed dead sandbox ${s}`)),
      (err: Error) => console.error(`strand daemon: gc failed: ${err.message}`),
    );
  }, seconds * 1000);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  clearInterval(timer);
  console.log('strand daemon: stopped');
}
