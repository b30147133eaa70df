// The overlay on a simulated 3-host cluster (namespaces on an underlay
// bridge, etcd on the underlay, one strand daemon per host):
// (1) convergence: 100 endpoints created one after another on host A; for
//     each, the time from the start of its creation until a container on
//     host B gets its first ICMP reply from it (B pings every 2 ms; its ARP
//     retransmit timer is cut to 5 ms so kernel ARP back-off does not hide
//     the agent's own latency);
// (2) throughput: iperf3 between containers on A and B across the overlay,
//     between A and B's host namespaces directly on the underlay, and between
//     two namespaces on a hand-built VXLAN path (overlay/plain-vxlan.ts: what
//     any VXLAN overlay costs on these hosts), all in the same run.
// Last line: overlay_convergence_p99_ms.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestBed, run as sh } from '../test/support/harness.js';
import { Cluster, type Host } from '../test/support/cluster.js';
import { median, percentile, report } from './stats.js';
import { buildPlainVxlan } from './overlay/plain-vxlan.js';

const here = dirname(fileURLToPath(import.meta.url));
const ENDPOINTS = 100;
const THROUGHPUT_ROUNDS = 5;

/** Pings from inside `netns` every 2 ms; resolves with the wall-clock ms of the first reply. */
function firstReply(netns: string, ip: string): { started: Promise<void>; reply: Promise<number>; stop: () => void } {
  const p = spawn('ip', ['netns', 'exec', netns, 'ping', '-D', '-n', '-i', '0.002', ip], { stdio: ['ignore', 'pipe', 'ignore'] });
  // No -w: with a deadline, ping quits at the first "unreachable", which is expected until the peer is programmed.
  const timer = setTimeout(() => p.kill('SIGKILL'), 10000);
  p.once('exit', () => clearTimeout(timer));
  const lines = createInterface({ input: p.stdout! });
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const reply = new Promise<number>((resolve, reject) => {
    lines.on('line', (l) => {
      if (l.startsWith('PING')) started();
      const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(l);
      if (m) resolve(Number(m[1]) * 1000);
    });
    p.once('exit', () => reject(new Error(`no reply from ${ip} within 10 s`)));
  });
  // Once answered, the kill that stops ping must not count as a failure.
  reply.catch(() => undefined);
  return { started: startedP, reply, stop: () => p.kill('SIGKILL') };
}

function iperf(clientArgs: string[], clientNs: string[]): number {
  const r = spawnSync(clientNs[0]!, [...clientNs.slice(1), 'iperf3', ...clientArgs, '-t', '4', '-J'], { encoding: 'utf8' });
  const out = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
  if (!out.end?.sum_received) throw new Error(`iperf3 failed: ${out.error ?? r.stderr}`);
  return out.end.sum_received.bits_per_second / 1e9;
}

async function convergence(a: Host, b: Host): Promise<{ fromStart: number[]; fromDone: number[] }> {
  b.strand(['run', '-d', '--name', 'probe', '--network', 'bench', '--', 'sleep', '3600']);
  const probeNs = b.netnsOf('probe');
  for (const [k, v] of [['retrans_time_ms', '5'], ['mcast_solicit', '3']]) sh('ip', ['netns', 'exec', probeNs, 'sysctl', '-qw', `net.ipv4.neigh.eth0.${k}=${v}`]);
  const maker = spawn('nsenter', [`--net=/run/netns/${a.netns}`, process.execPath, join(here, 'overlay', 'endpoint-maker.js'), 'bench'], { env: a.env, stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: maker.stdout! })[Symbol.asyncIterator]();
  const fromStart: number[] = [];
  const fromDone: number[] = [];
  try {
    for (let i = 0; i < ENDPOINTS; i++) {
      const ip = `10.250.${1 + (i >> 8)}.${10 + (i & 0xff)}`;
      const probe = firstReply(probeNs, ip);
      await probe.started;
      maker.stdin!.write(`${ip}\n`);
      const line = await answers.next();
      if (line.done) throw new Error('the endpoint maker on host A exited');
      const [t0, t1] = line.value.split(' ').map(Number) as [number, number];
      try {
        const got = await probe.reply;
        fromStart.push(got - t0);
        fromDone.push(got - t1);
      } finally {
        probe.stop();
      }
    }
  } finally {
    maker.stdin!.end('quit\n');
    await new Promise((r) => maker.once('exit', r));
  }
  return { fromStart, fromDone };
}

async function throughput(bed: TestBed, a: Host, b: Host): Promise<{ overlay: number; underlay: number; plain: number }> {
  a.strand(['run', '-d', '--name', 'iperf-a', '--network', 'bench', '--', 'iperf3', '-s', '-p', '5201']);
  const ipA = a.ipOf('iperf-a');
  const mtu = ipJsonMtu(a.netnsOf('iperf-a'));
  const plain = buildPlainVxlan(bed, a, b, mtu);
  const servers = [
    spawn('nsenter', [`--net=/run/netns/${a.netns}`, 'iperf3', '-s', '-p', '5202', '-B', a.ip], { stdio: 'ignore' }),
    spawn('ip', ['netns', 'exec', plain.serverNs, 'iperf3', '-s', '-p', '5203'], { stdio: 'ignore' }),
  ];
  try {
    await new Promise((r) => setTimeout(r, 500));
    const runs = { overlay: [] as number[], underlay: [] as number[], plain: [] as number[] };
    // Alternating rounds, so drift in the machine's load hits every path alike.
    for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
      runs.overlay.push(iperf(['-c', ipA, '-p', '5201'], ['ip', 'netns', 'exec', b.netnsOf('probe')]));
      runs.plain.push(iperf(['-c', plain.serverIp, '-p', '5203'], ['ip', 'netns', 'exec', plain.clientNs]));
      runs.underlay.push(iperf(['-c', a.ip, '-p', '5202'], ['nsenter', `--net=/run/netns/${b.netns}`]));
    }
    for (const [path, gbps] of Object.entries(runs)) console.log(`${path} rounds (Gbit/s): ${gbps.map((g) => g.toFixed(2)).join(' ')}`);
    return { overlay: median(runs.overlay), underlay: median(runs.underlay), plain: median(runs.plain) };
  } finally {
    for (const s of servers) s.kill('SIGKILL');
  }
}

/** The MTU strand gave a container's eth0, so the hand-built path uses the same. */
function ipJsonMtu(netns: string): number {
  const links = JSON.parse(sh('ip', ['-j', '-n', netns, 'link', 'show', 'eth0']).stdout) as { mtu: number }[];
  return links[0]!.mtu;
}

export async function run(): Promise<void> {
  const bed = new TestBed();
  try {
    const c = await Cluster.start(bed, { hosts: 3, leaseTtl: 10, resync: 10 });
    const [a, b] = c.hosts as [Host, Host];
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.250.0.0/16', 'bench']);
    const conv = await convergence(a, b);
    const tp = await throughput(bed, a, b);
    console.log(`endpoints: ${ENDPOINTS} on host A, probed from host B`);
    report('overlay_convergence_from_created_p50_ms', percentile(conv.fromDone, 50));
    report('overlay_convergence_from_created_p99_ms', percentile(conv.fromDone, 99));
    report('overlay_convergence_p50_ms', percentile(conv.fromStart, 50));
    report('overlay_gbps', tp.overlay);
    report('plain_vxlan_gbps', tp.plain);
    report('underlay_gbps', tp.underlay);
    report('plain_vxlan_underlay_throughput_ratio', tp.plain / tp.underlay);
    report('overlay_vs_plain_vxlan_ratio', tp.overlay / tp.plain);
    report('overlay_underlay_throughput_ratio', tp.overlay / tp.underlay);
    report('overlay_convergence_p99_ms', percentile(conv.fromStart, 99));
  } finally {
    await bed.dispose();
  }
}
