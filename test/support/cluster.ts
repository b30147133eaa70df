// A simulated cluster for overlay tests: an "underlay" namespace holding a
// bridge (the data-centre switch, 192.168.254.0/24) and the store server,
// and N "host" namespaces on it, each running its own `strand daemon` with
// its own run dir, host id and VTEP. Everything strand does on a host runs
// inside that host's namespace (nsenter --net), with this build's CLI.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNetns, listNetns, writeSysctl } from '../../netlink/index.js';
import { run, waitFor, type TestBed } from './harness.js';
import { distFile } from './paths.js';
import { ECHO_SERVER } from './traffic.js';

/** This build's CLI, not the shared dist/ that bin/strand runs. */
export const CLI = distFile('cli', 'main.js');
const LAUNCH = `import(${JSON.stringify(CLI)}).then((m) => m.main(process.argv.slice(1)))`;

export const SUBNET = '192.168.254';
export const STORE_IP = `${SUBNET}.1`;

export { waitFor };

/** The store server, inside the underlay namespace. */
export class StoreServer {
  private proc: ChildProcess | undefined;
  private log = '';
  readonly dataDir: string;

  constructor(
    readonly kind: 'etcd' | 'redis',
    private readonly netns: string,
  ) {
    this.dataDir = mkdtempSync(join(tmpdir(), `strand-ovl-${kind}-`));
  }

  get url(): string {
    // Protected mode off: clients come from the hosts' underlay addresses, never beyond the test's namespaces.
    return this.kind === 'etcd' ? `etcd://${STORE_IP}:2379` : `redis://${STORE_IP}:6379`;
  }

  private args(): string[] {
    if (this.kind === 'etcd') {
      return [
        'etcd', '--name', 'ovl', '--data-dir', join(this.dataDir, 'etcd'),
        '--listen-client-urls', `http://${STORE_IP}:2379`, '--advertise-client-urls', `http://${STORE_IP}:2379`,
        '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
        '--initial-cluster', 'ovl=http://127.0.0.1:2380', '--log-level', 'error',
      ];
    }
    return ['redis-server', '--port', '6379', '--bind', STORE_IP, '--dir', this.dataDir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--loglevel', 'warning', '--protected-mode', 'no'];
  }

  private ready(): boolean {
    const probe = this.kind === 'etcd'
      ? ['curl', '-sf', '--max-time', '1', `http://${STORE_IP}:2379/health`]
      : [process.execPath, '-e', `const s = require('net').connect(6379, '${STORE_IP}', () => s.write('PING\\r\\n')); s.on('data', (d) => { process.stdout.write(String(d)); process.exit(0); }); s.on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 1000);`];
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.netns}`, ...probe], { encoding: 'utf8' });
    return r.status === 0 && (this.kind === 'etcd' ? r.stdout.includes('"health":"true"') : r.stdout.includes('PONG'));
  }

  async start(): Promise<void> {
    this.log = '';
    const proc = spawn('nsenter', [`--net=/run/netns/${this.netns}`, ...this.args()], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout!.on('data', (d: Buffer) => (this.log += d));
    proc.stderr!.on('data', (d: Buffer) => (this.log += d));
    await waitFor(`${this.kind} to answer (log: ${this.log.slice(-500)})`, () => proc.exitCode === null && this.ready(), 20000, 100);
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Stops the server, keeping its data. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  async remove(): Promise<void> {
    await this.kill();
    run('rm', ['-rf', this.dataDir], { allowFail: true });
  }
}

export class Host {
  readonly dir: string;
  daemon: ChildProcess | undefined;
  daemonLog = '';

  constructor(
    readonly cluster: Cluster,
    readonly id: string,
    readonly netns: string,
    readonly ip: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `strand-ovl-${id}-`));
    mkdirSync(join(this.dir, 'run'), { recursive: true });
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, STRAND_STORE: this.cluster.store.url, STRAND_RUN_DIR: join(this.dir, 'run'), STRAND_HOST_ID: this.id };
  }

  private argv(args: string[]): string[] {
    return [`--net=/run/netns/${this.netns}`, process.execPath, '--input-type=module', '-e', LAUNCH, ...args];
  }

  /** `strand ARGS` on this host; throws unless it succeeds (or allowFail). */
  strand(args: string[], options: { allowFail?: boolean; timeoutMs?: number } = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync('nsenter', this.argv(args), { env: this.env, encoding: 'utf8', timeout: options.timeoutMs ?? 60000 });
    const out = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (out.status !== 0 && !options.allowFail) throw new Error(`[${this.id}] strand ${args.join(' ')} failed (${out.status}): ${out.stderr.trim()}`);
    return out;
  }

  /** Starts `strand daemon` with the overlay agent (and with `cni`, its CNI socket in this host's run dir); resolves once it has synced. */
  async startDaemon(extra: string[] = [], options: { cni?: boolean } = {}): Promise<void> {
    this.daemonLog = '';
    const args = ['daemon', ...(options.cni ? [] : ['--no-cni']), '--no-docker', '--advertise-addr', this.ip, '--host-id', this.id, '--lease-ttl', String(this.cluster.leaseTtl), '--resync-interval', String(this.cluster.resync), ...extra];
    const child = spawn('nsenter', this.argv(args), { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.daemon = child;
    child.stdout!.on('data', (d: Buffer) => (this.daemonLog += d));
    child.stderr!.on('data', (d: Buffer) => (this.daemonLog += d));
    await waitFor(`daemon on ${this.id} to start (log: ${this.daemonLog})`, () => {
      if (child.exitCode !== null) throw new Error(`daemon on ${this.id} exited (${child.exitCode}): ${this.daemonLog}`);
      // With CNI, ready once the socket serves: a front finding none would quietly fall back.
      return this.daemonLog.includes(options.cni ? 'serving CNI requests' : 'strand daemon: restored');
    });
  }

  /** kill -9: the agent dies without a word; its lease runs out. */
  async killDaemon(): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    const gone = new Promise((r) => d.once('exit', r));
    d.kill('SIGKILL');
    await gone;
  }

  dump(): { store: { reachable: boolean }; agent: { storeReachable: boolean } | null; inSync: boolean; tables: { network: string; present: boolean; pending: number; desired: { fdb: { mac: string; dst: string }[] }; actual: { fdb: { mac: string; dst: string }[] } }[] } {
    return JSON.parse(this.strand(['daemon', 'dump']).stdout);
  }

  /** A detached sandbox on `network` running the echo server. */
  serve(name: string, network: string, tcp: number[], extra: string[] = []): void {
    this.strand(['run', '-d', '--name', name, '--network', network, ...extra, '--', process.execPath, ECHO_SERVER, name, tcp.join(',')]);
  }

  ps(): { id: string; name: string; addresses: string[] }[] {
    return JSON.parse(this.strand(['ps', '--format', 'json']).stdout);
  }

  ipOf(sandbox: string): string {
    const v4 = this.ps().find((s) => s.name === sandbox)?.addresses.find((a) => !a.includes(':'));
    if (!v4) throw new Error(`sandbox ${sandbox} on ${this.id} has no IPv4 address`);
    return v4.split('/')[0]!;
  }

  netnsOf(sandbox: string): string {
    const sb = this.ps().find((s) => s.name === sandbox);
    if (!sb) throw new Error(`no sandbox ${sandbox} on ${this.id}`);
    return `strand-${sb.id.slice(0, 12)}`;
  }

  /** The vxlan FDB of this host as iproute2 sees it: MAC → VTEP. */
  fdb(device: string): Map<string, string> {
    return vxlanFdb(this.netns, device);
  }

  async teardown(): Promise<void> {
    // Whatever else fails below, no daemon may outlive the test.
    await this.killDaemon();
    const sandboxes = this.strand(['ps', '--format', 'json'], { allowFail: true }).stdout;
    const ids = sandboxes.startsWith('[') ? (JSON.parse(sandboxes) as { id: string }[]).map((s) => s.id) : [];
    for (const id of ids) this.strand(['rm', '-f', id], { allowFail: true });
    // Only this host's own sandboxes' namespaces: other suites may be running beside us.
    const left = new Set(listNetns());
    for (const id of ids) if (left.has(`strand-${id.slice(0, 12)}`)) deleteNetns(`strand-${id.slice(0, 12)}`);
    run('rm', ['-rf', this.dir], { allowFail: true });
  }
}

/** A vxlan device's FDB in a namespace as iproute2 sees it: MAC → VTEP (the all-zero flooding entry left out). */
export function vxlanFdb(netns: string, device: string): Map<string, string> {
  const r = run('bridge', ['-j', '-n', netns, 'fdb', 'show', 'dev', device], { allowFail: true });
  if (r.status !== 0) return new Map();
  const rows = JSON.parse(r.stdout || '[]') as { mac: string; dst?: string }[];
  return new Map(rows.filter((e) => e.dst && e.mac !== '00:00:00:00:00:00').map((e) => [e.mac, e.dst!]));
}

/** The simulated data centre: a switch namespace ("u") with bridge `sw` holding the store's address, and N host namespaces on it. */
export interface Underlay {
  name: string;
  hosts: { netns: string; ip: string }[];
}

/** Builds the switch and `count` hosts (eth0 at 192.168.254.11, .12, ..., forwarding on), all removed with the bed. */
export function buildUnderlay(bed: TestBed, count: number): Underlay {
  const ul = bed.netns('u');
  const unl = bed.netlink(ul.ns);
  unl.links.set('lo', { up: true });
  // A MAC of its own: a bridge otherwise takes its lowest port's, so a port added later (a router, a
  // second host link) could change it under the store's address and strand every host's ARP entry.
  unl.links.add({ kind: 'bridge', name: 'sw', mac: '02:00:00:00:fe:01', up: true });
  unl.addresses.add('sw', `${STORE_IP}/24`);
  const hosts: Underlay['hosts'] = [];
  for (let i = 0; i < count; i++) {
    const h = bed.netns(`h${i}`);
    const hnl = bed.netlink(h.ns);
    unl.links.add({ kind: 'veth', name: `p${i}`, master: 'sw', up: true, peer: { name: 'eth0', netns: h.ns } });
    hnl.links.set('lo', { up: true });
    hnl.links.set('eth0', { up: true });
    const ip = `${SUBNET}.${11 + i}`;
    hnl.addresses.add('eth0', `${ip}/24`);
    writeSysctl('net.ipv4.ip_forward', 1, h.ns);
    hosts.push({ netns: h.name, ip });
  }
  return { name: ul.name, hosts };
}

export interface ClusterOptions {
  hosts?: number;
  store?: 'etcd' | 'redis';
  leaseTtl?: number;
  resync?: number;
  /** Daemons also serve CNI requests (strand-overlay needs them). */
  cni?: boolean;
}

export class Cluster {
  readonly underlay: string;
  readonly store: StoreServer;
  readonly hosts: Host[] = [];
  readonly leaseTtl: number;
  readonly resync: number;

  private constructor(bed: TestBed, options: ClusterOptions) {
    this.leaseTtl = options.leaseTtl ?? 3;
    this.resync = options.resync ?? 2;
    const ul = buildUnderlay(bed, options.hosts ?? 3);
    this.underlay = ul.name;
    this.store = new StoreServer(options.store ?? 'etcd', ul.name);
    ul.hosts.forEach((h, i) => this.hosts.push(new Host(this, `host${i}`, h.netns, h.ip)));
    bed.defer(async () => {
      // A test that failed during an outage: removing sandboxes needs the store.
      if (!this.store.running) await this.store.start().catch(() => undefined);
      for (const h of this.hosts) await h.teardown().catch(() => undefined);
      await this.store.remove();
    });
  }

  /** Builds the underlay and hosts, starts the store and one daemon per host. */
  static async start(bed: TestBed, options: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(bed, options);
    await c.store.start();
    for (const h of c.hosts) await h.startDaemon([], { cni: options.cni ?? false });
    return c;
  }
}

/**
 * `strand cni install` on a host, and a CNI_PATH dir whose strand plugins run
 * inside that host's namespace with its store and run dir, so the installed
 * front reaches that host's daemon: what a node's runtime would call.
 */
export function installCniOn(host: Host): string[] {
  const bin = join(host.dir, 'cni-bin');
  host.strand(['cni', 'install', '--dir', bin]);
  const path = join(host.dir, 'cni-path');
  mkdirSync(path, { recursive: true });
  const env = host.env;
  for (const name of ['strand-overlay', 'strand-bridge', 'strand-ipam']) {
    const file = join(path, name);
    writeFileSync(file, `#!/bin/sh\nexport STRAND_STORE=${env.STRAND_STORE} STRAND_RUN_DIR=${env.STRAND_RUN_DIR}\nexec nsenter --net=/run/netns/${host.netns} ${join(bin, name)}\n`);
    chmodSync(file, 0o755);
  }
  return [path];
}
