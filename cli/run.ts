// `strand run`: a command in a new sandbox, connected as asked. In the
// foreground everything is torn down when the command exits; with -d the
// sandbox stays until `strand rm`.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { StrandError } from '../common/errors.js';
import { spawnInNamespaces, type SandboxNamespaces } from '../netlink/index.js';
import { parsePortSpec } from '../firewall/index.js';
import type { Controller, ConnectRequest } from '../core/controller.js';
import type { PortRequest } from '../core/ports.js';
import type { SandboxRecord } from '../core/types.js';
import { sandboxDir } from '../core/sandbox-files.js';
import { processAlive } from '../core/process-info.js';
import { flag, list, parse, str } from './args.js';

const USAGE = `usage: strand run [-d] [--name N] [--network NAME|host|none|container:N] [-p SPEC]... [-P --expose PORT]...
                  [--ip IP] [--ip6 IP] [--hostname H] [--dns IP]... [--dns-search D]... [--dns-option O]...
                  [--add-host host:IP]... -- CMD ARGS...
`;

/** The default network `strand run` uses, made on first use as Docker's "bridge" is. */
export const DEFAULT_NETWORK = { name: 'bridge', options: { 'bridge.name': 'strand0' } };

function parseExpose(spec: string): { proto: 'tcp' | 'udp'; port: number }[] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw new StrandError('invalid', `invalid --expose "${spec}": expected PORT[-END][/tcp|udp]`);
  const first = Number(m[1]);
  const last = m[2] ? Number(m[2]) : first;
  if (first < 1 || last > 65535 || last < first) throw new StrandError('invalid', `invalid --expose "${spec}": ports are 1 to 65535`);
  return Array.from({ length: last - first + 1 }, (_, i) => ({ proto: (m[3] ?? 'tcp') as 'tcp' | 'udp', port: first + i }));
}

/** HOST:IP, where IP may be IPv6 (host:::1 or host:[::1]). */
function parseAddHost(spec: string): { name: string; ip: string } {
  const colon = spec.indexOf(':');
  const name = spec.slice(0, colon);
  const ip = spec.slice(colon + 1).replace(/^\[(.*)\]$/, '$1');
  if (colon <= 0 || !isIP(ip)) throw new StrandError('invalid', `invalid --add-host "${spec}": expected HOST:IP`);
  return { name, ip };
}

async function ensureNetwork(c: Controller, name: string): Promise<void> {
  if (name !== DEFAULT_NETWORK.name || (await c.lookupNetwork(name))) return;
  try {
    await c.createNetwork({ name, driver: 'bridge', options: DEFAULT_NETWORK.options });
  } catch (err) {
    // Another strand run made it at the same moment: fine.
    if (!(err instanceof StrandError && err.code === 'exists')) throw err;
  }
}

/** Where the sandbox's first process runs: its namespaces, or those of the sandbox it shares. */
function namespacesFor(c: Controller, sb: SandboxRecord, target: SandboxRecord | undefined, files: string): SandboxNamespaces {
  const net = c.openSandboxNs(sb);
  if (sb.kind === 'host') return { net };
  if (target?.pid && processAlive(target.pid)) return { net, joinPid: target.pid };
  return {
    net,
    fresh: {
      hostname: sb.hostname,
      binds: [
        [join(files, 'hosts'), '/etc/hosts'],
        [join(files, 'resolv.conf'), '/etc/resolv.conf'],
        [join(files, 'hostname'), '/etc/hostname'],
      ],
    },
  };
}

export async function runCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  const p = parse(argv, {
    detach: { type: 'boolean', short: 'd' }, name: { type: 'string' }, network: { type: 'string' },
    publish: { type: 'string', short: 'p', multiple: true }, 'publish-all': { type: 'boolean', short: 'P' }, expose: { type: 'string', multiple: true },
    ip: { type: 'string' }, ip6: { type: 'string' }, hostname: { type: 'string' }, dns: { type: 'string', multiple: true },
    'dns-search': { type: 'string', multiple: true }, 'dns-option': { type: 'string', multiple: true }, 'add-host': { type: 'string', multiple: true },
  }, USAGE);
  if (!p.positionals.length) throw new StrandError('invalid', `strand run needs a command after --\n${USAGE}`);
  const detach = flag(p, 'detach');
  const mode = str(p, 'network') ?? DEFAULT_NETWORK.name;
  const ports: PortRequest[] = list(p, 'publish').flatMap(parsePortSpec);
  const exposed = list(p, 'expose').flatMap(parseExpose);
  if (flag(p, 'publish-all')) for (const e of exposed) ports.push({ proto: e.proto, hostPort: 0, containerPort: e.port });
  const extraHosts = list(p, 'add-host').map(parseAddHost);
  const isHost = mode === 'host';
  const shareWith = mode.startsWith('container:') ? mode.slice('container:'.length) : undefined;
  if ((isHost || shareWith) && (ports.length || str(p, 'ip') || str(p, 'ip6'))) {
    throw new StrandError('invalid', `--network ${mode} shares a namespace it does not own: -p, -P, --ip and --ip6 cannot be used with it`);
  }
  if (shareWith && (str(p, 'hostname') || list(p, 'dns').length || extraHosts.length)) {
    throw new StrandError('invalid', '--network container:NAME shares that sandbox\'s hostname, DNS and hosts: --hostname, --dns and --add-host cannot be used with it');
  }

  const c = await ctl();
  if (!isHost && !shareWith) await ensureNetwork(c, mode);
  const sandbox = await c.createSandbox({
    ...(str(p, 'name') ? { name: str(p, 'name')! } : {}),
    ...(isHost ? { host: true } : {}),
    ...(shareWith ? { shareWith } : {}),
    ...(str(p, 'hostname') ? { hostname: str(p, 'hostname')! } : {}),
    dns: { servers: list(p, 'dns'), search: list(p, 'dns-search'), options: list(p, 'dns-option') },
    extraHosts,
    ...(detach ? {} : { ownerPid: process.pid }),
  });
  let child: ChildProcess | undefined;
  try {
    if (!shareWith) {
      const req: ConnectRequest = { ports, exposed, addresses: [str(p, 'ip'), str(p, 'ip6')].filter((a): a is string => !!a) };
      await c.connect(isHost ? 'host' : mode, sandbox.id, req);
    }
    const target = shareWith ? await c.findSandbox(shareWith) : undefined;
    const files = sandboxDir(c.runDir, target?.id ?? sandbox.id);
    const ns = namespacesFor(c, sandbox, target, files);
    const [cmd, ...args] = p.positionals as [string, ...string[]];
    try {
      if (detach) {
        const log = openSync(join(sandboxDir(c.runDir, sandbox.id), 'output.log'), 'a');
        try {
          child = spawnInNamespaces(ns, () => spawn(cmd, args, { detached: true, stdio: ['ignore', log, log] }));
        } finally {
          closeSync(log);
        }
      } else {
        child = spawnInNamespaces(ns, () => spawn(cmd, args, { stdio: 'inherit' }));
      }
    } finally {
      ns.net.close();
    }
    const started = child;
    const spawned = await new Promise<boolean>((resolve) => {
      started.once('spawn', () => resolve(true));
      started.once('error', (err) => {
        process.stderr.write(`strand: cannot run "${cmd}": ${err.message}\n`);
        resolve(false);
      });
    });
    if (!spawned) throw new StrandError('invalid', `command "${cmd}" could not be started`);
    await c.setSandboxPid(sandbox, started.pid!);
  } catch (err) {
    await c.removeSandbox(sandbox.id).catch((cleanup: Error) => {
      // The user must learn that something was left, and what to run.
      if (err instanceof Error) err.message += `; removing the half-made sandbox "${sandbox.name}" failed too (${cleanup.message}): run "strand gc"`;
    });
    throw err;
  }

  if (detach) {
    child.unref();
    console.log(sandbox.id);
    return;
  }
  const running = child;
  // Signals for the command go to it; strand tears down once it exits.
  const forward = (sig: NodeJS.Signals) => running.kill(sig);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
  const code = await new Promise<number>((resolve) => running.once('exit', (status, signal) => resolve(status ?? 128 + (signal ? constants.signals[signal] : 0))));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, forward);
  await c.removeSandbox(sandbox.id);
  process.exitCode = code;
}
