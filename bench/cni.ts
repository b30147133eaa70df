// ADD+DEL cycles of strand-bridge with strand-ipam against the reference
// bridge with host-local (same subnet, ipMasq and isGateway on), one fresh
// namespace per cycle, sequentially and then 16 at a time, with strand's
// plugins served by a running `strand daemon` (as installed: the thin front
// hands each verb to it). The same plugins without a daemon (each verb a Node
// process) are measured sequentially too, for comparison. Runs inside a
// namespace of its own, so the host's tables stay untouched. strand-overlay
// (which works only through the daemon and its overlay agent) is measured
// sequentially beside them, on a one-host overlay whose VTEP is a veth's
// address in that namespace.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netlink, createNetns, deleteNetns } from '../netlink/index.js';
import { installPlugins } from '../plugins/cni/install.js';
import { invokePluginRaw, outcomeError } from '../plugins/cni/protocol/exec.js';
import { median, nowMs, report } from './stats.js';
import { runIsolated } from './isolated.js';
import { strandBin } from '../test/support/paths.js';

const SEQUENTIAL = 40;
const PARALLEL = 16;
const PARALLEL_ROUNDS = 4;
const REFERENCE_DIR = '/usr/lib/cni';
/** The overlay agent's VTEP: an address of this benchmark's own namespace. */
const UNDERLAY_IP = '192.168.253.1';
const STRAND_BIN = strandBin;

interface Side {
  name: string;
  config: Record<string, unknown>;
}

async function call(side: Side, path: string[], command: 'ADD' | 'DEL', cid: string, netns: string, env: Record<string, string>): Promise<void> {
  const o = await invokePluginRaw({ type: String(side.config.type), path, command, containerId: cid, netns, ifName: 'eth0', config: side.config, env });
  if (o.exitCode !== 0) throw outcomeError(String(side.config.type), o);
}

/** One ADD+DEL cycle in a fresh namespace; the namespace's own creation is not timed. */
async function cycle(side: Side, path: string[], cid: string, env: Record<string, string>): Promise<number> {
  const nsName = `strand-bench-${cid}`;
  createNetns(nsName).close();
  try {
    const t0 = nowMs();
    await call(side, path, 'ADD', cid, `/run/netns/${nsName}`, env);
    await call(side, path, 'DEL', cid, `/run/netns/${nsName}`, env);
    return nowMs() - t0;
  } finally {
    deleteNetns(nsName);
  }
}

/** `strand daemon` serving CNI requests; resolves once its socket is up. */
function startDaemon(env: Record<string, string>, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [STRAND_BIN, 'daemon', '--gc-interval', '3600', '--no-docker', ...extra], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('serving CNI requests')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`strand daemon exited (${code}): ${out}`)));
  });
}

async function measure(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-cni-'));
  let daemon: ChildProcess | undefined;
  try {
    const bin = join(dir, 'bin');
    await installPlugins(bin, { names: ['strand-bridge', 'strand-ipam', 'strand-overlay'] });
    const path = [bin, REFERENCE_DIR];
    const env = { STRAND_STORE: `local://${join(dir, 'store')}`, STRAND_RUN_DIR: join(dir, 'run') };
    const common = { cniVersion: '1.0.0', isGateway: true, ipMasq: true };
    const sides: Side[] = [
      { name: 'strand', config: { ...common, name: 'bench-strand', type: 'strand-bridge', bridge: 'br-strand', ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.150.0.0/16' }]] } } },
      { name: 'reference', config: { ...common, name: 'bench-ref', type: 'bridge', bridge: 'br-ref', ipam: { type: 'host-local', ranges: [[{ subnet: '10.150.0.0/16' }]], dataDir: join(dir, 'host-local') } } },
    ];
    // Without a daemon first: every verb is a Node process of its own.
    const alone: number[] = [];
    for (let i = 0; i < 10; i++) alone.push(await cycle(sides[0]!, path, `alone${i}`, env));
    // The overlay agent runs beside the CNI server: strand-overlay needs it, the others do not use it.
    const nl = Netlink.open();
    nl.links.add({ kind: 'veth', name: 'ul0', up: true, peer: { name: 'ul1' } });
    nl.links.set('ul1', { up: true });
    nl.addresses.add('ul0', `${UNDERLAY_IP}/24`);
    nl.close();
    daemon = await startDaemon(env, ['--advertise-addr', UNDERLAY_IP, '--host-id', 'bench']);
    const created = spawnSync(process.execPath, [STRAND_BIN, 'network', 'create', '-d', 'overlay', '--subnet', '10.151.0.0/16', 'bench-ovl'], { env: { ...process.env, ...env, STRAND_HOST_ID: 'bench' }, encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`strand network create failed: ${created.stderr}`);
    const overlay: Side = { name: 'overlay', config: { cniVersion: '1.0.0', name: 'bench-overlay', type: 'strand-overlay', network: 'bench-ovl' } };
    // One warm-up cycle each: the first ADD makes the bridge and its rules.
    for (const s of [...sides, overlay]) await cycle(s, path, `warm-${s.name}`, env);

    const seq: Record<string, number[]> = { strand: [], reference: [], overlay: [] };
    for (let i = 0; i < SEQUENTIAL; i++) {
      // Alternate so drift in machine load hits every side alike.
      for (const s of [...sides, overlay]) seq[s.name]!.push(await cycle(s, path, `s${i}-${s.name}`, env));
    }
    const par: Record<string, number[]> = { strand: [], reference: [] };
    for (let round = 0; round < PARALLEL_ROUNDS; round++) {
      for (const s of sides) {
        par[s.name]!.push(...(await Promise.all(Array.from({ length: PARALLEL }, (_, i) => cycle(s, path, `p${round}-${i}-${s.name}`, env)))));
      }
    }
    const seqRatio = median(seq.strand!) / median(seq.reference!);
    const parRatio = median(par.strand!) / median(par.reference!);
    report('cni_sequential_strand_ms', median(seq.strand!));
    report('cni_sequential_reference_ms', median(seq.reference!));
    report('cni_sequential_ratio', seqRatio);
    report('cni_parallel16_strand_ms', median(par.strand!));
    report('cni_parallel16_reference_ms', median(par.reference!));
    report('cni_parallel16_ratio', parRatio);
    report('cni_sequential_overlay_ms', median(seq.overlay!));
    report('cni_sequential_overlay_to_bridge_ratio', median(seq.overlay!) / median(seq.strand!));
    report('cni_no_daemon_sequential_strand_ms', median(alone));
    report('cni_no_daemon_sequential_ratio', median(alone) / median(seq.reference!));
    report('cni_cycle_ratio', Math.max(seqRatio, parRatio));
  } finally {
    daemon?.kill('SIGTERM');
    if (daemon && daemon.exitCode === null) await new Promise((r) => daemon!.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

export function run(): Promise<void> {
  return runIsolated('cni', measure);
}
