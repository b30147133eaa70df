// Real etcd and Redis servers for tests and benchmarks: each on free loopback
// ports with its data in a temp dir. stop() ends the process (SIGTERM, then
// SIGKILL) and removes the dir; kill()/restart() simulate an outage while
// keeping the data. stopAllServers() is a safety net for after() hooks.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TestServer {
  /** Store URL for openStore(). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Stops the process (SIGTERM, then SIGKILL) keeping its data. */
  kill(): Promise<void>;
  /** Starts the process again on the same port and data dir; waits until it answers. */
  restart(): Promise<void>;
  /** Stops the process and removes its data dir. */
  stop(): Promise<void>;
}

const live = new Set<TestServer>();

/** A port nobody listens on now (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopProcess(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

interface Spec {
  name: string;
  binary: string;
  args: (dataDir: string) => string[];
  /** Resolves once the server answers real requests. */
  ready: (port: number) => Promise<boolean>;
}

async function startServer(spec: Spec, port: number, url: string): Promise<TestServer> {
  if (!fs.existsSync(spec.binary)) {
    throw new Error(`${spec.binary} is missing: run "bash scripts/setup.sh" to install ${spec.name}`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `strand-${spec.name}-`));
  let proc: ChildProcess | undefined;
  let log = '';

  const launch = async (): Promise<void> => {
    if (await canConnect(port)) throw new Error(`${spec.name}: port ${port} is taken by another process`);
    log = '';
    proc = spawn(spec.binary, spec.args(dataDir), { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`${spec.name} exited with ${proc.exitCode}: ${log}`);
      if (await spec.ready(port).catch(() => false)) return;
      await sleep(100);
    }
    await stopProcess(proc);
    throw new Error(`${spec.name} did not answer on port ${port} within 30 s: ${log}`);
  };

  const server: TestServer = {
    url,
    host: '127.0.0.1',
    port,
    dataDir,
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    kill: () => stopProcess(proc),
    restart: async () => {
      await stopProcess(proc);
      await launch();
    },
    stop: async () => {
      live.delete(server);
      await stopProcess(proc);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  live.add(server);
  try {
    await launch();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** Sends PING and resolves whether the reply starts with `expect`. */
function redisReply(port: number, expect: RegExp): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    sock.setTimeout(1000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) {
        sock.destroy();
        // "-LOADING" while it reads its data back: not ready yet.
        resolve(expect.test(reply));
      }
    });
    sock.once('error', () => resolve(false));
  });
}

const redisPing = (port: number) => redisReply(port, /^\+PONG/);
const redisAnswers = (port: number) => redisReply(port, /^(\+PONG|-NOAUTH)/);

/** etcd answers its /health endpoint on the client port once it has a leader. */
async function etcdHealthy(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
  if (!res.ok) return false;
  const body = (await res.json()) as { health?: string };
  return body.health === 'true';
}

export async function startEtcd(): Promise<TestServer> {
  const port = await freePort();
  const peerPort = await freePort();
  return startServer(
    {
      name: 'etcd',
      binary: '/usr/bin/etcd',
      args: (dataDir) => [
        '--name', 'strand-test',
        '--data-dir', dataDir,
        '--listen-client-urls', `http://127.0.0.1:${port}`,
        '--advertise-client-urls', `http://127.0.0.1:${port}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `strand-test=http://127.0.0.1:${peerPort}`,
        '--initial-cluster-state', 'new',
        '--log-level', 'warn',
      ],
      ready: etcdHealthy,
    },
    port,
    `etcd://127.0.0.1:${port}`,
  );
}

export interface RedisOptions {
  /** Append-only file, so data survives kill() + restart() (default true). */
  persist?: boolean;
  /** Require this password (the URL then carries it). */
  password?: string;
}

export async function startRedis(options: RedisOptions = {}): Promise<TestServer> {
  const port = await freePort();
  const persist = options.persist ?? true;
  return startServer(
    {
      name: 'redis',
      binary: '/usr/bin/redis-server',
      args: (dataDir) => [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', dataDir,
        '--save', '',
        '--appendonly', persist ? 'yes' : 'no',
        '--appendfsync', 'always',
        '--daemonize', 'no',
        '--loglevel', 'warning',
        ...(options.password !== undefined ? ['--requirepass', options.password] : []),
      ],
      // Without the password PING answers -NOAUTH, which still proves it is up.
      ready: options.password !== undefined ? redisAnswers : redisPing,
    },
    port,
    options.password !== undefined ? `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
  );
}

/** Stops every server these helpers started and have not stopped yet. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}
