// Create and delete 500 veth pairs, one end in a namespace, through strand's
// netlink layer and, in the same run, through `ip` commands.
//
// Deleting one veth costs the kernel an RCU grace period (about 16 ms on
// these machines) however it is asked, so strand deletes many links the way
// its teardown and GC do: one group delete, one grace period. The per-link
// figures are printed too, so the kernel-bound part stays visible.
import { spawnSync } from 'node:child_process';
import { Netlink, createNetns, deleteNetns } from '../netlink/index.js';
import { median, nowMs, report } from './stats.js';

const PAIRS = 500;
const ROUNDS = 3;
const EACH_SAMPLE = 50; // pairs deleted one by one, for the per-link delete figure

interface Phases {
  create: number;
  delete: number;
  deleteEach: number;
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.toString().trim()}`);
}

const hostName = (i: number): string => `sbh${i}`;
const peerName = (i: number): string => `sbc${i}`;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function viaStrand(nsName: string): Phases {
  const ns = createNetns(nsName);
  const nl = Netlink.open();
  try {
    const t0 = nowMs();
    for (const i of range(PAIRS)) nl.links.add({ kind: 'veth', name: hostName(i), peer: { name: peerName(i), netns: ns } });
    const t1 = nowMs();
    nl.links.deleteMany(range(PAIRS - EACH_SAMPLE).map(hostName));
    const t2 = nowMs();
    for (const i of range(EACH_SAMPLE)) nl.links.delete(hostName(PAIRS - EACH_SAMPLE + i));
    const t3 = nowMs();
    return { create: t1 - t0, delete: ((t2 - t1) * PAIRS) / (PAIRS - EACH_SAMPLE), deleteEach: (t3 - t2) / EACH_SAMPLE };
  } finally {
    nl.links.deleteMany(range(PAIRS).map(hostName), { missingOk: true });
    nl.close();
    ns.close();
    deleteNetns(nsName);
  }
}

function viaIp(nsName: string): Phases {
  ip(['netns', 'add', nsName]);
  try {
    const t0 = nowMs();
    for (const i of range(PAIRS)) ip(['link', 'add', hostName(i), 'type', 'veth', 'peer', 'name', peerName(i), 'netns', nsName]);
    const t1 = nowMs();
    for (const i of range(PAIRS)) ip(['link', 'del', hostName(i)]);
    const t2 = nowMs();
    return { create: t1 - t0, delete: t2 - t1, deleteEach: (t2 - t1) / PAIRS };
  } finally {
    ip(['netns', 'del', nsName]);
  }
}

export async function run(): Promise<void> {
  const strand: Phases[] = [];
  const iproute: Phases[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate so drift in machine load hits both sides alike.
    strand.push(viaStrand(`strand-bench-${process.pid}`));
    iproute.push(viaIp(`strand-bench-ip-${process.pid}`));
    const s = strand.at(-1)!;
    const i = iproute.at(-1)!;
    console.log(`round ${round + 1}: strand create ${s.create.toFixed(0)} ms + delete ${s.delete.toFixed(0)} ms; ip create ${i.create.toFixed(0)} ms + delete ${i.delete.toFixed(0)} ms (${PAIRS} pairs)`);
  }
  const med = (xs: Phases[], k: keyof Phases): number => median(xs.map((x) => x[k]));
  const total = (xs: Phases[]): number => median(xs.map((x) => x.create + x.delete));
  report('netlink_create_ms_per_pair', med(strand, 'create') / PAIRS, 3);
  report('ip_create_ms_per_pair', med(iproute, 'create') / PAIRS, 3);
  report('create_speedup', med(iproute, 'create') / med(strand, 'create'));
  report('netlink_delete_one_ms', med(strand, 'deleteEach'), 3);
  report('ip_delete_one_ms', med(iproute, 'deleteEach'), 3);
  report('delete_one_speedup', med(iproute, 'deleteEach') / med(strand, 'deleteEach'));
  report('netlink_vs_ip_speedup', total(iproute) / total(strand));
}
