// `strand ps`, `strand rm` and `strand gc`: the sandboxes `strand run` made.
import { StrandError } from '../common/errors.js';
import type { Controller } from '../core/controller.js';
import { shortId } from '../core/ids.js';
import { flag, parse, str, table } from './args.js';

const USAGE = `usage: strand ps [--format json] | strand rm [-f] NAME... | strand gc
`;

export async function psCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  const p = parse(argv, { format: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } }, USAGE);
  const c = await ctl();
  const nets = new Map((await c.listNetworks()).map((n) => [n.id, n.name]));
  const rows = [];
  for (const sb of await c.listSandboxes()) {
    const eps = await c.endpointsIn(sb);
    rows.push({
      id: sb.id,
      name: sb.name,
      networks: sb.kind === 'container' ? [`container:${sb.sharesWith?.slice(0, 12)}`] : eps.map((e) => nets.get(e.networkId) ?? e.networkId),
      addresses: eps.flatMap((e) => e.addresses),
      ports: eps.flatMap((e) => e.ports.map((p) => `${p.hostIp ? `${p.hostIp}:` : ''}${p.hostPort}->${p.containerPort}/${p.proto}`)),
      pid: sb.pid,
      running: c.sandboxRunning(sb),
    });
  }
  if (flag(p, 'quiet')) return void process.stdout.write(rows.map((r) => shortId(r.id) + '\n').join(''));
  if (str(p, 'format') === 'json') return void console.log(JSON.stringify(rows));
  if (str(p, 'format') !== undefined) throw new StrandError('invalid', `unknown --format "${str(p, 'format')}": use json`);
  process.stdout.write(
    table(['SANDBOX ID', 'NAME', 'STATUS', 'NETWORKS', 'ADDRESSES', 'PORTS'], rows.map((r) => [shortId(r.id), r.name, r.running ? `running (pid ${r.pid})` : 'exited', r.networks.join(','), r.addresses.join(','), r.ports.join(', ')])),
  );
}

/** Stops a sandbox's process (TERM, then KILL after a grace period) and removes the sandbox. */
export async function rmCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  const p = parse(argv, { force: { type: 'boolean', short: 'f' } }, USAGE);
  if (!p.positionals.length) throw new StrandError('invalid', `strand rm needs at least one NAME\n${USAGE}`);
  const c = await ctl();
  for (const ref of p.positionals) {
    const sb = await c.findSandbox(ref);
    if (c.sandboxRunning(sb)) {
      if (!flag(p, 'force')) throw new StrandError('in-use', `sandbox "${sb.name}" is running (pid ${sb.pid}); stop it first or use strand rm -f`);
      await c.stopSandbox(sb);
    }
    await c.removeSandbox(sb);
    console.log(sb.name);
  }
}


export async function gcCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  parse(argv, {}, USAGE);
  const r = await (await ctl()).reconcile();
  for (const s of r.removedSandboxes) console.log(`removed sandbox ${s}`);
  for (const o of r.removedOrphans) console.log(`removed ${o}`);
  for (const a of r.releasedAddresses) console.log(`released address ${a}`);
}
