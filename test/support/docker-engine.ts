// A real Docker engine for the tests, inside a test "host" namespace: strand
// daemon serving its plugin sockets in a private directory, and a private
// dockerd (own data root, exec root, API socket) in a mount namespace of its
// own where that directory is /run/docker/plugins (dockerd hard-codes the
// path), so nothing touches the machine's namespace, /run or /etc/docker.
// stop() removes every container, network, process and file it made.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, symlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type TestBed } from './harness.js';
import { World } from './topology.js';
import { strandBin } from './paths.js';

export const STRAND_BIN = strandBin;
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
export const IMAGE = 'strand-busybox:test';
const APPLETS = ['sh', 'ping', 'ping6', 'nc', 'httpd', 'wget', 'ip', 'sleep', 'cat', 'hostname', 'mkdir', 'echo', 'ls', 'true', 'dd', 'wc'];

export interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

/** Installs Debian's docker.io when dockerd is missing (the machine's package manager, as scripts/setup.sh does). */
export function ensureDockerInstalled(): void {
  if (spawnSync('dockerd', ['--version']).status === 0) return;
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'docker.io', 'busybox-static']);
}

async function waitFor(what: string, ms: number, ok: () => boolean, log?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${log ? `\n${log()}` : ''}`);
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

export interface EngineOptions {
  /** dockerd keeps its own bridge network (docker0 and its iptables rules, inside the namespace) to compare against. */
  builtinBridge?: boolean;
  /** An existing "host" namespace to run in (a cluster's host); default a new World of its own. */
  netns?: string;
  /** strand's store URL; default a local store in the engine's directory. */
  store?: string;
  /** strand's host id in a shared store (STRAND_HOST_ID for the daemon and the CLI). */
  hostId?: string;
  /** More `strand daemon` arguments (--advertise-addr IP ...). */
  strandArgs?: string[];
}

export class DockerEngine {
  readonly world: World | undefined;
  readonly dir: string;
  private strandd: ChildProcess | undefined;
  private dockerd: ChildProcess | undefined;
  /**
   * dockerd and strand daemon log to files, not pipes: the tests call docker
   * synchronously, so nothing would drain a pipe, and once its 64 KiB filled
   * (some 26 containers) dockerd blocked on a log write and every docker
   * command hung.
   */
  private logFile(name: 'dockerd' | 'strand'): string {
    return join(this.dir, `${name}.log`);
  }

  private logTail(name: 'dockerd' | 'strand'): string {
    try {
      return readFileSync(this.logFile(name), 'utf8').slice(-20000);
    } catch {
      return '';
    }
  }

  /** The tail of dockerd's log, for failure messages. */
  get dockerdLog(): string {
    return this.logTail('dockerd');
  }

  /** What strand daemon printed since it last started (its tail). */
  private get strandLog(): string {
    return this.logTail('strand');
  }

  constructor(
    bed: TestBed,
    private readonly options: EngineOptions = {},
  ) {
    this.world = options.netns ? undefined : new World(bed);
    this.dir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-docker-')));
    for (const d of ['plugins', 'etc-docker']) mkdirSync(join(this.dir, d));
    bed.defer(() => this.stop());
  }

  get host(): string {
    return this.options.netns ?? this.world!.host.name;
  }

  get socket(): string {
    return join(this.dir, 'docker.sock');
  }

  get strandEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      STRAND_STORE: this.options.store ?? `local://${join(this.dir, 'store')}`,
      STRAND_RUN_DIR: join(this.dir, 'run'),
      ...(this.options.hostId ? { STRAND_HOST_ID: this.options.hostId } : {}),
    };
  }

  async start(): Promise<void> {
    await this.startStrand();
    await this.startDockerd();
    this.importImage();
  }

  /** strand daemon in the host namespace, its sockets in the private plugin directory. */
  async startStrand(): Promise<void> {
    const log = openSync(this.logFile('strand'), 'w');
    const child = spawn('nsenter', [`--net=/run/netns/${this.host}`, process.execPath, STRAND_BIN, 'daemon', '--no-cni', '--gc-interval', '3600', '--docker-plugin-dir', join(this.dir, 'plugins'), ...(this.options.strandArgs ?? [])], { env: this.strandEnv, stdio: ['ignore', log, log] });
    closeSync(log);
    this.strandd = child;
    await waitFor('strand daemon to serve the Docker plugins', 30000, () => /serving Docker plugins/.test(this.strandLog) || child.exitCode !== null, () => this.strandLog);
    if (child.exitCode !== null) throw new Error(`strand daemon exited: ${this.strandLog}`);
  }

  async stopStrand(): Promise<void> {
    await stopChild(this.strandd, 10000);
    this.strandd = undefined;
  }

  get strandOutput(): string {
    return this.strandLog;
  }

  async startDockerd(): Promise<void> {
    // The mount points must exist for the private mounts over them; they stay empty on the machine.
    for (const d of ['/run/docker/plugins', '/etc/docker', '/run/containerd']) mkdirSync(d, { recursive: true });
    const d = this.dir;
    const args = [
      `--net=/run/netns/${this.host}`,
      'unshare', '--mount', '--propagation', 'private', '--',
      // Positional parameters, not interpolation: the paths never become shell text.
      'sh', '-c', 'set -e; mount --bind "$1" /run/docker/plugins; mount --bind "$2" /etc/docker; mount -t tmpfs strand-test /run/containerd; shift 2; exec "$@"', 'sh',
      join(d, 'plugins'), join(d, 'etc-docker'),
      'dockerd', '--data-root', join(d, 'data'), '--exec-root', join(d, 'exec'), '--pidfile', join(d, 'dockerd.pid'),
      '-H', `unix://${this.socket}`, '--storage-driver', 'vfs',
      // strand programs its networks' ports itself; dockerd's rules only when its own bridge is compared.
      ...(this.options.builtinBridge ? [] : ['--bridge=none', '--iptables=false', '--ip-masq=false']),
    ];
    const log = openSync(this.logFile('dockerd'), 'w');
    const child = spawn('nsenter', args, { stdio: ['ignore', 'ignore', log] });
    closeSync(log);
    this.dockerd = child;
    await waitFor('dockerd', 60000, () => child.exitCode !== null || this.docker(['version'], { allowFail: true }).status === 0, () => this.dockerdLog);
    if (child.exitCode !== null) throw new Error(`dockerd exited: ${this.dockerdLog}`);
  }

  /** Stops dockerd as a machine shutdown would: its containers stop with it. */
  async stopDockerd(): Promise<void> {
    await stopChild(this.dockerd, 30000);
    this.dockerd = undefined;
  }

  importImage(): void {
    const root = join(this.dir, 'image');
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
    for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
    run('tar', ['-C', root, '-cf', join(this.dir, 'image.tar'), '.']);
    this.docker(['import', '--change', 'CMD ["sh"]', join(this.dir, 'image.tar'), IMAGE]);
  }

  docker(args: string[], options: { allowFail?: boolean; timeoutMs?: number } = {}): Ran {
    const r = spawnSync(DOCKER, ['-H', `unix://${this.socket}`, ...args], { encoding: 'utf8', timeout: options.timeoutMs ?? 60000 });
    const out = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (out.status !== 0 && !options.allowFail) throw new Error(`docker ${args.join(' ')} failed (${out.status}): ${out.stderr.trim()} ${out.stdout.trim()}\nstrand daemon:\n${this.strandLog.slice(-3000)}\ndockerd:\n${this.dockerdLog.slice(-1500)}`);
    return out;
  }

  /** A detached container that sleeps (or runs cmd), on the given docker run flags. */
  container(name: string, flags: string[], cmd: string[] = ['sleep', '3600']): string {
    return this.docker(['run', '-d', '--name', name, ...flags, IMAGE, ...cmd]).stdout.trim();
  }

  exec(name: string, cmd: string[], options: { allowFail?: boolean } = {}): Ran {
    return this.docker(['exec', name, ...cmd], options);
  }

  /** The container's address on a network, from the engine's own view. */
  ipOn(container: string, network: string): string {
    const out = this.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container]).stdout.trim();
    if (!out) throw new Error(`${container} has no address on ${network}`);
    return out;
  }

  /** Full id of a docker network. */
  networkId(name: string): string {
    return this.docker(['network', 'inspect', '-f', '{{.Id}}', name]).stdout.trim();
  }

  /** strand's own view, straight from its store. */
  strand(args: string[]): Ran {
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.host}`, process.execPath, STRAND_BIN, ...args], { env: this.strandEnv, encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  async stop(): Promise<void> {
    if (this.dockerd && this.dockerd.exitCode === null) {
      const ids = this.docker(['ps', '-aq'], { allowFail: true }).stdout.split('\n').filter(Boolean);
      if (ids.length) this.docker(['rm', '-f', ...ids], { allowFail: true });
      // Networks go while strand still answers, so its bridges and rules go with them.
      if (this.strandd) this.docker(['network', 'prune', '-f'], { allowFail: true });
    }
    await this.stopDockerd();
    // A dockerd killed hard leaves its containerd behind.
    const ctrPid = join(this.dir, 'exec', 'containerd', 'containerd.pid');
    if (existsSync(ctrPid)) {
      const pid = Number(readFileSync(ctrPid, 'utf8'));
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.stopStrand();
  }
}
