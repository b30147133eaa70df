// A test "host" for the strand command: a namespace where strand runs (its
// bridges and iptables live there), an outside namespace behind it, a store
// and run directory of its own, and teardown of every sandbox it made.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNetns, listNetns } from '../../netlink/index.js';
import { type TestBed } from '../../test/support/harness.js';
import { World } from '../../test/support/topology.js';
import { ECHO_SERVER } from '../../test/support/traffic.js';
import { strandBin } from '../../test/support/paths.js';

const BIN = strandBin;

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class StrandHost {
  readonly world: World;
  readonly dir: string;
  private readonly nsBefore: Set<string>;

  constructor(private readonly bed: TestBed) {
    this.nsBefore = new Set(listNetns());
    this.world = new World(bed);
    this.dir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-cli-')));
    bed.defer(() => this.teardown());
  }

  get name(): string {
    return this.world.host.name;
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, STRAND_STORE: `local://${join(this.dir, 'store')}`, STRAND_RUN_DIR: join(this.dir, 'run') };
  }

  /**
   * Runs `strand ARGS` inside the host namespace; throws unless it succeeds (or allowFail).
   * nsenter, not `ip netns exec`: the latter gives the process a mount namespace of its own,
   * and the namespaces strand bind-mounts under /run/netns would vanish with it.
   */
  strand(args: string[], options: { allowFail?: boolean; timeoutMs?: number } = {}): CliResult {
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.name}`, process.execPath, BIN, ...args], { env: this.env, encoding: 'utf8', timeout: options.timeoutMs ?? 30000 });
    const out = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (out.status !== 0 && !options.allowFail) throw new Error(`strand ${args.join(' ')} failed (${out.status}): ${out.stderr.trim()}`);
    return out;
  }

  /** A command in a throwaway sandbox sharing the named one's network (`--network container:NAME`). */
  inside(sandbox: string, cmd: string[], options: { allowFail?: boolean } = {}): CliResult {
    return this.strand(['run', '--network', `container:${sandbox}`, '--', ...cmd], options);
  }

  ps(): { id: string; name: string; addresses: string[]; ports: string[]; networks: string[]; pid?: number }[] {
    return JSON.parse(this.strand(['ps', '--format', 'json']).stdout);
  }

  /** The namespace name of a sandbox, for `ip -n` checks. */
  netnsOf(sandbox: string): string {
    const sb = this.ps().find((s) => s.name === sandbox);
    if (!sb) throw new Error(`no sandbox ${sandbox}`);
    return `strand-${sb.id.slice(0, 12)}`;
  }

  /** The first IPv4 address of a sandbox, without prefix length. */
  ipOf(sandbox: string): string {
    const sb = this.ps().find((s) => s.name === sandbox);
    const v4 = sb?.addresses.find((a) => !a.includes(':'));
    if (!v4) throw new Error(`sandbox ${sandbox} has no IPv4 address`);
    return v4.split('/')[0]!;
  }

  /** A detached echo server sandbox; resolves once it answers on its first TCP port. */
  serverSandbox(name: string, network: string, tcp: number[], udp: number[] = [], extra: string[] = []): void {
    this.strand(['run', '-d', '--name', name, '--network', network, ...extra, '--', process.execPath, ECHO_SERVER, name, tcp.join(','), udp.join(',')]);
  }

  private teardown(): void {
    // Everything strand made goes with its sandboxes and networks; the host namespace takes the rest.
    const names = this.strand(['ps', '-q'], { allowFail: true }).stdout.split('\n').filter(Boolean);
    for (const id of names) this.strand(['rm', '-f', id], { allowFail: true });
    this.strand(['network', 'prune'], { allowFail: true });
    for (const ns of listNetns()) if (ns.startsWith('strand-') && !this.nsBefore.has(ns)) deleteNetns(ns);
  }
}
