// What a network costs `docker run --rm` of a trivial command on a real
// dockerd: on a strand-bridge network (strand-ipam), on a network of Docker's
// built-in bridge driver, and with --network none; overhead = time minus the
// none time. The ratio compares like with like: a user-defined network of the
// built-in driver, which gets the same per-container work in dockerd as a
// plugin's network (embedded DNS resolver, service records). Docker's default
// `bridge` network skips that work; its overhead is printed too.
// dockerd, its docker0 and its iptables rules all live in a namespace of
// their own (the engine the netns tests use), so the machine stays untouched.
import { ensureDockerInstalled, DockerEngine, IMAGE } from '../test/support/docker-engine.js';
import { TestBed } from '../test/support/harness.js';
import { median, nowMs, report } from './stats.js';

const ROUNDS = 15;
const WARMUP = 2;

export async function run(args: string[]): Promise<void> {
  const rounds = Number(args[0] ?? ROUNDS);
  ensureDockerInstalled();
  const bed = new TestBed();
  const cleanup = (): void => bed.disposeSync();
  process.once('SIGINT', cleanup);
  try {
    const e = new DockerEngine(bed, { builtinBridge: true });
    await e.start();
    e.docker(['network', 'create', '-d', 'strand-bridge', '--ipam-driver', 'strand-ipam', '--subnet', '10.250.0.0/24', 'strandnet']);
    e.docker(['network', 'create', '-d', 'bridge', '--subnet', '10.251.0.0/24', 'builtinnet']);
    const modes = { none: 'none', default: 'bridge', builtin: 'builtinnet', strand: 'strandnet' } as const;
    const times: Record<keyof typeof modes, number[]> = { none: [], default: [], builtin: [], strand: [] };
    for (let i = 0; i < WARMUP + rounds; i++) {
      // Interleaved, so drift in the machine's load hits every mode alike.
      for (const [mode, network] of Object.entries(modes) as [keyof typeof modes, string][]) {
        const t0 = nowMs();
        e.docker(['run', '--rm', '--network', network, IMAGE, 'true']);
        if (i >= WARMUP) times[mode].push(nowMs() - t0);
      }
    }
    const [none, dflt, builtin, strand] = [median(times.none), median(times.default), median(times.builtin), median(times.strand)];
    const overBuiltin = builtin - none;
    const overStrand = strand - none;
    console.log(`docker run --rm, median of ${rounds}: none ${none.toFixed(1)} ms, default bridge network ${dflt.toFixed(1)} ms, built-in bridge driver network ${builtin.toFixed(1)} ms, strand-bridge ${strand.toFixed(1)} ms`);
    report('docker_default_bridge_overhead_ms', dflt - none, 1);
    report('docker_builtin_overhead_ms', overBuiltin, 1);
    report('docker_strand_overhead_ms', overStrand, 1);
    // Overheads within noise of zero would make the ratio meaningless; clamp the divisor at 1 ms.
    report('docker_overhead_ratio', Math.max(overStrand, 0) / Math.max(overBuiltin, 1));
  } finally {
    process.removeListener('SIGINT', cleanup);
    await bed.dispose();
  }
}
