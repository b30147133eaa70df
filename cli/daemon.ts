// `strand daemon`: the per-host agent. It reconciles the kernel with the
// store on start, serves strand's CNI plugins' requests on a unix socket
// (so no Node process starts per CNI verb), and keeps collecting what killed
// runs leave behind.
import type { Controller } from '../core/controller.js';
import { flag, parse } from './args.js';

const USAGE = `usage: strand daemon [--gc-interval SECONDS] [--no-cni]
`;

export async function daemonCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  const p = parse(argv, { 'gc-interval': { type: 'string' }, 'no-cni': { type: 'boolean' } }, USAGE);
  const seconds = Number(p.values['gc-interval'] ?? 30);
  const c = await ctl();
  const r = await c.reconcile();
  console.log(`strand daemon: restored ${r.restored.length} network(s), removed ${r.removedSandboxes.length} dead sandbox(es) and ${r.removedOrphans.length} orphan(s)`);
  const cni = flag(p, 'no-cni') ? undefined : await (await import('../agent/cni-server.js')).serveCni();
  if (cni) console.log(`strand daemon: serving CNI requests on ${cni.address() as string}`);
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
  await new Promise((resolve) => (cni ? cni.close(resolve) : resolve(undefined)));
  console.log('strand daemon: stopped');
}
