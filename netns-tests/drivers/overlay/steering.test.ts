// Cross-CPU steering of overlay containers' veths: a queue per CPU (up to 8)
// on both ends, the container end sending CPU c's packets on queue c (XPS), and
// the host end handing each queue to the CPUs that do not send on it (RPS). The
// masks live in sysfs of each end's own namespace, which the daemon (entered
// into its host with nsenter --net, so its /sys is another namespace's) must
// still reach. Checked from the kernel's side: queue counts, masks, and the
// per-CPU softnet counters while a sender pinned to one CPU pushes data.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { onlineCpus } from '../../../netlink/cpu-steering.js';
import { maskCpus } from '../../../test/support/cpu-masks.js';
import { useTestBed, ipJson, run } from '../../../test/support/harness.js';
import { Cluster, waitFor, type Host } from '../../../test/support/cluster.js';

const sysfs = (netns: string, device: string, file: string): string => run('ip', ['netns', 'exec', netns, 'cat', `/sys/class/net/${device}/${file}`]).stdout.trim();

interface Queues { tx: number; rx: number }
/** The queues in use (sysfs lists those; `ip -d` reports the most the device could have). */
function queuesOf(netns: string, device: string): Queues {
  const names = run('ip', ['netns', 'exec', netns, 'ls', `/sys/class/net/${device}/queues`]).stdout.split(/\s+/);
  return { tx: names.filter((n) => n.startsWith('tx-')).length, rx: names.filter((n) => n.startsWith('rx-')).length };
}

/** The host end of the container's veth on `net` (the one veth port of its bridge: one container per network and host here). */
function hostVethOf(h: Host, net: string): string {
  const id = (JSON.parse(h.strand(['network', 'inspect', net]).stdout)[0].Id as string).slice(0, 12);
  const ports = ipJson<{ ifname: string }>(['link', 'show', 'master', `so-${id}`, 'type', 'veth'], h.netns);
  assert.equal(ports.length, 1, `one container port on ${net}: ${JSON.stringify(ports)}`);
  return ports[0]!.ifname;
}

/** Per CPU: [packets processed, RPS wake-ups received], from /proc/net/softnet_stat (one line per CPU, hex). */
function softnet(): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (const line of readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')) {
    const f = line.trim().split(/\s+/).map((x) => parseInt(x, 16));
    out.set(f[12]!, [f[0]!, f[9]!]);
  }
  return out;
}

describe('overlay cross-CPU steering', function () {
  this.timeout(180000);
  const bed = useTestBed();

  it('gives containers a queue per CPU with crosswise XPS/RPS masks in their own namespaces, moves the host path off the sending CPU, and leaves it alone with steering=false', async function () {
    const cpus = onlineCpus();
    if (cpus.length < 2) this.skip(); // one CPU: nothing to steer to, and strand makes single-queue veths
    const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - sysfs /.test(l)).length;
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.231.0.0/24', 'steered']);
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.232.0.0/24', '-o', 'steering=false', 'plain']);
    for (const [net, port] of [['steered', '5301'], ['plain', '5302']] as const) {
      a.strand(['run', '-d', '--name', `srv-${net}`, '--network', net, '--', 'iperf3', '-s', '-p', port]);
      b.strand(['run', '-d', '--name', `cli-${net}`, '--network', net, '--', 'sleep', '600']);
    }

    const queues = Math.min(cpus.length, 8);
    for (const h of [a, b]) {
      const sandbox = h === a ? 'srv-steered' : 'cli-steered';
      const hostVeth = hostVethOf(h, 'steered');
      const ns = h.netnsOf(sandbox);
      assert.deepEqual(queuesOf(h.netns, hostVeth), { tx: queues, rx: queues });
      assert.deepEqual(queuesOf(ns, 'eth0'), { tx: queues, rx: queues });
      const senders = Array.from({ length: queues }, (_, q) => maskCpus(sysfs(ns, 'eth0', `queues/tx-${q}/xps_cpus`)));
      assert.deepEqual(senders.flat().sort((x, y) => x - y), cpus, `${h.id}: every CPU sends on exactly one queue`);
      senders.forEach((s, q) => {
        const handlers = maskCpus(sysfs(h.netns, hostVeth, `queues/rx-${q}/rps_cpus`));
        assert.deepEqual([...handlers, ...s].sort((x, y) => x - y), cpus, `${h.id} queue ${q}: handled by every CPU but its senders`);
      });

      const plainVeth = hostVethOf(h, 'plain');
      assert.deepEqual(queuesOf(h.netns, plainVeth), { tx: 1, rx: 1 });
      assert.deepEqual(maskCpus(sysfs(h.netns, plainVeth, 'queues/rx-0/rps_cpus')), []);
    }
    // The private sysfs mounts stayed private.
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - sysfs /.test(l)).length, mountsBefore);

    // A sender pinned to one CPU: on the steered network, other CPUs take the host path (RPS wake-ups there).
    const sender = cpus[0]!;
    const rpsWakeups = (net: 'steered' | 'plain', port: string): number => {
      const ip = a.ipOf(`srv-${net}`);
      const ns = b.netnsOf(`cli-${net}`);
      const before = softnet();
      const r = run('taskset', ['-c', String(sender), 'ip', 'netns', 'exec', ns, 'iperf3', '-c', ip, '-p', port, '-n', '200M', '-J'], { allowFail: true });
      const after = softnet();
      const got = JSON.parse(r.stdout) as { end?: { sum_sent?: { bytes: number }; sum_received?: { bytes: number } }; error?: string };
      // The receiver's own tally stops a moment before the last bytes; the sender's is exact.
      assert.ok((got.end?.sum_sent?.bytes ?? 0) >= 200 * 1024 * 1024 && (got.end?.sum_received?.bytes ?? 0) > 190 * 1024 * 1024, `200 MB across ${net}: ${got.error ?? r.stderr} ${JSON.stringify(got.end)}`);
      let wakeups = 0;
      for (const [cpu, [, rps]] of after) if (cpu !== sender) wakeups += rps - (before.get(cpu)?.[1] ?? 0);
      return wakeups;
    };
    await waitFor('the iperf3 servers', () => run('ip', ['netns', 'exec', b.netnsOf('cli-plain'), 'iperf3', '-c', a.ipOf('srv-plain'), '-p', '5302', '-n', '1K'], { allowFail: true }).status === 0 && run('ip', ['netns', 'exec', b.netnsOf('cli-steered'), 'iperf3', '-c', a.ipOf('srv-steered'), '-p', '5301', '-n', '1K'], { allowFail: true }).status === 0);
    const steered = rpsWakeups('steered', '5301');
    const plain = rpsWakeups('plain', '5302');
    console.log(`      RPS wake-ups on CPUs other than the sender's: steered ${steered}, steering=false ${plain}`);
    assert.ok(steered >= 100, `steered: ${steered} RPS wake-ups elsewhere`);
    // Without steering nothing hands packets over: the sender's CPU runs the whole path.
    assert.ok(plain <= steered / 4, `steering=false: ${plain} RPS wake-ups elsewhere (steered ${steered})`);
  });
});
