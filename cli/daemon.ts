// `strand daemon`: the per-host agent. It reconciles the kernel with the
// store on start, serves strand's CNI plugins' requests on a unix socket
// (so no Node process starts per CNI verb), and keeps collecting what killed
// runs leave behind. It serves Docker's remote driver protocol on the plugin
// sockets (strand-bridge, strand-macvlan, strand-overlay, strand-ipam). With
// --advertise-addr it also runs the overlay agent: registers this host's VTEP
// on a lease, programs overlay peers and removes hosts that never come back.
// Its veth deletions run on a worker thread, after the answer.
// `strand daemon dump` prints this host's overlay peer tables, desired
// against actual.
import { isIPv4 } from 'node:net';
import { hostname } from 'node:os';
import { StrandError } from '../common/errors.js';
import type { Controller } from '../core/controller.js';
import { flag, parse, str } from './args.js';
import { runDir } from '../common/defaults.js';

const USAGE = `usage: strand daemon [--gc-interval SECONDS] [--cni-linger SECONDS] [--no-cni] [--no-docker] [--docker-plugin-dir DIR]
                     [--advertise-addr IP [--host-id ID] [--lease-ttl SECONDS] [--resync-interval SECONDS]
                      [--dead-host-grace SECONDS]]
       strand daemon dump [--host-id ID]
  --gc-interval S          how often dead sandboxes are collected (default 30)
  --cni-linger S           how long a CNI network with no attachment left keeps its bridge and
                           rules, in case one comes back (default 30; 0 removes them at once)
  --docker-plugin-dir DIR  where the Docker plugin sockets go (default /run/docker/plugins)
  --dead-host-grace S      how long a host without a lease keeps its overlay endpoints and
                           addresses before the cluster removes them (default 600)
`;

function seconds(value: string | undefined, fallback: number, name: string, options: { zeroOk?: boolean } = {}): number {
  if (value === undefined) return fallback;
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !options.zeroOk)) throw new StrandError('invalid', `invalid --${name} "${value}": give a ${options.zeroOk ? 'non-negative' : 'positive'} number of seconds`);
  return n;
}

export async function daemonCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  if (argv[0] === 'dump') return dumpCommand(ctl, argv.slice(1));
  const p = parse(
    argv,
    {
      'gc-interval': { type: 'string' },
      'cni-linger': { type: 'string' },
      'no-cni': { type: 'boolean' },
      'no-docker': { type: 'boolean' },
      'docker-plugin-dir': { type: 'string' },
      'advertise-addr': { type: 'string' },
      'host-id': { type: 'string' },
      'lease-ttl': { type: 'string' },
      'resync-interval': { type: 'string' },
      'dead-host-grace': { type: 'string' },
    },
    USAGE,
  );
  const gcSeconds = seconds(str(p, 'gc-interval'), 30, 'gc-interval');
  const cniLinger = seconds(str(p, 'cni-linger'), 30, 'cni-linger', { zeroOk: true });
  const advertise = str(p, 'advertise-addr');
  if (advertise !== undefined && !isIPv4(advertise)) throw new StrandError('invalid', `invalid --advertise-addr "${advertise}": give this host's IPv4 address on the underlay`);
  const leaseTtl = seconds(str(p, 'lease-ttl'), 10, 'lease-ttl');
  const resync = seconds(str(p, 'resync-interval'), 10, 'resync-interval');
  const deadHostGrace = seconds(str(p, 'dead-host-grace'), 600, 'dead-host-grace');
  // The controller reads the host id when it opens; every strand command of this host must use the same one.
  const hostId = str(p, 'host-id');
  if (hostId !== undefined) process.env.STRAND_HOST_ID = hostId;
  const c = await ctl();
  c.setCniLinger(cniLinger * 1000);

  let overlay: import('../agent/overlay-peers.js').OverlayPeers | undefined;
  if (advertise !== undefined) {
    const { OverlayPeers } = await import('../agent/overlay-peers.js');
    const { statusFileIn } = await import('../agent/overlay-dump.js');
    const log = (line: string): void => console.log(`strand daemon: overlay: ${line}`);
    overlay = new OverlayPeers({
      store: c.store, hostId: c.hostId, advertiseAddr: advertise, leaseTtlSeconds: leaseTtl, resyncMs: resync * 1000, statusFile: statusFileIn(c.runDir),
      teardown: (n) => c.removeNetworkState(n),
      deadHosts: { graceMs: deadHostGrace * 1000, ipam: c.ipamService() },
      reclaim: async () => void (await c.reclaimGlobalEndpoints(log)),
      log,
    });
    // Registered before reconcile: restoring an overlay network needs this host's VTEP.
    await overlay.register();
    console.log(`strand daemon: overlay: host ${c.hostId} registered with VTEP ${advertise} (lease ${leaseTtl}s)`);
  }
  const r = await c.reconcile();
  console.log(`strand daemon: restored ${r.restored.length} network(s), removed ${r.removedSandboxes.length} dead sandbox(es) and ${r.removedOrphans.length} orphan(s)`);
  await overlay?.start();
  const cni = flag(p, 'no-cni') ? undefined : await (await import('../agent/cni-server.js')).serveCni(undefined, { controller: c, agent: overlay !== undefined });
  if (cni) console.log(`strand daemon: serving CNI requests on ${cni.address() as string}`);
  const dockerDir = str(p, 'docker-plugin-dir');
  const docker = flag(p, 'no-docker') ? undefined : await (await import('../agent/docker-plugins.js')).serveDockerPlugins(c, ...(dockerDir ? [dockerDir] : []));
  if (docker) console.log(`strand daemon: serving Docker plugins on ${docker.sockets.join(', ')}`);
  const timer = setInterval(() => {
    c.gcSandboxes().then(
      (removed) => removed.forEach((s) => console.log(`strand daemon: removed dead sandbox ${s}`)),
      (err: Error) => console.error(`strand daemon: gc failed: ${err.message}`),
    );
  }, gcSeconds * 1000);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  clearInterval(timer);
  await overlay?.stop();
  await new Promise((resolve) => (cni ? cni.close(resolve) : resolve(undefined)));
  await docker?.close();
  console.log('strand daemon: stopped');
}

async function dumpCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  const p = parse(argv, { 'host-id': { type: 'string' } }, USAGE);
  const hostId = str(p, 'host-id');
  if (hostId !== undefined) process.env.STRAND_HOST_ID = hostId;
  const { dump } = await import('../agent/overlay-dump.js');
  let c: Controller;
  try {
    c = await ctl();
  } catch (err) {
    // A store that cannot even be opened is what dump must still report on.
    if (!(err instanceof StrandError && err.code === 'unavailable')) throw err;
    const id = process.env.STRAND_HOST_ID ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-');
    console.log(JSON.stringify(await dump(undefined, id, runDir(), err.message), null, 2));
    return;
  }
  console.log(JSON.stringify(await dump(c.store, c.hostId, c.runDir), null, 2));
}
