// Attach 200 sandboxes, each with one published port, to one strand bridge
// network one after another, timing each attach; then detach them all. The
// cost of one attach must not grow with the endpoints and rules already
// there. Runs in a namespace of its own so the host's tables stay untouched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openController } from '../runtime/index.js';
import { median, nowMs, report } from './stats.js';
import { runIsolated } from './isolated.js';

const SANDBOXES = 200;
const WINDOW = 20;

async function measure(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-bridge-'));
  const ctl = await openController({ store: `local://${join(dir, 'store')}`, runDir: join(dir, 'run') });
  const attach: number[] = [];
  const sandboxes: string[] = [];
  try {
    await ctl.createNetwork({ name: 'bench', subnets: [{ subnet: '10.123.0.0/16' }] });
    for (let i = 0; i < SANDBOXES; i++) {
      const t0 = nowMs();
      const sb = await ctl.createSandbox({ name: `s${i}` });
      await ctl.connect('bench', sb.id, { ports: [{ proto: 'tcp', hostPort: 20000 + i, containerPort: 80 }] });
      attach.push(nowMs() - t0);
      sandboxes.push(sb.id);
    }
    const t0 = nowMs();
    for (const id of sandboxes.splice(0)) await ctl.removeSandbox(id);
    const detachAll = nowMs() - t0;
    const first = median(attach.slice(0, WINDOW));
    const last = median(attach.slice(-WINDOW));
    report('bridge_attach_first20_ms', first);
    report('bridge_attach_last20_ms', last);
    report('bridge_detach_ms_each', detachAll / SANDBOXES);
    report('bridge_attach_growth', last / first);
  } finally {
    for (const id of sandboxes) await ctl.removeSandbox(id).catch(() => undefined);
    await ctl.deleteNetwork('bench').catch(() => undefined);
    await ctl.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function run(): Promise<void> {
  return runIsolated('bridge', measure);
}
