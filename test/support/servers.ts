// Real etcd and Redis servers for tests and benchmarks: each on free loopback
// ports with its data in a temp dir. stop() ends the process (SIGTERM, then
// SIGKILL) and removes the dir; kill()/restart() simulate an outage while
// keeping the data. stopAllServers() is a safety net for after() hooks.
// Both can serve TLS only (certificates from certs.ts), etcd can run with
// user/password auth enabled and a small request limit, Redis with a password,
// with Debian's default persistence, without CONFIG, as a replica, and
// watched by redis-sentinel.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

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
  /** Ends the process with SIGKILL at once (a crash: no shutdown save), keeping its data. */
  crash(): Promise<void>;
  /** Starts the process again on the same port and data dir; waits until it answers. */
  restart(): Promise<void>;
  /** Stops the process and removes its data dir. */
  stop(): Promise<void>;
}

/** Server-side TLS: the server presents cert/key; ca verifies client certificates. */
export interface ServerTls {
  ca: string;
  cert: string;
  key: string;
  /** Require a client certificate signed by `ca` (the URL then carries cert= and key=). */
  clientCertAuth?: boolean;
  /** Client certificate and key to put in the URL and use for readiness checks; required with clientCertAuth. */
  clientCert?: string;
  clientKey?: string;
}

/** The store URL query for a TLS server: tls=1, ca=, and cert=/key= when the server verifies clients. */
function tlsQuery(t: ServerTls): string {
  const q = [`tls=1`, `ca=${encodeURIComponent(t.ca)}`];
  if (t.clientCertAuth) q.push(`cert=${encodeURIComponent(clientFiles(t).cert)}`, `key=${encodeURIComponent(clientFiles(t).key)}`);
  return q.join('&');
}

function clientFiles(t: ServerTls): { cert: string; key: string } {
  if (t.clientCert === undefined || t.clientKey === undefined) {
    throw new Error('a server with clientCertAuth needs clientCert and clientKey for its URL');
  }
  return { cert: t.clientCert, key: t.clientKey };
}

/** Options for node:tls and node:https that verify the server and present the client certificate if needed. */
function clientTlsOptions(t: ServerTls): tls.ConnectionOptions {
  return {
    ca: fs.readFileSync(t.ca),
    ...(t.clientCertAuth ? { cert: fs.readFileSync(clientFiles(t).cert), key: fs.readFileSync(clientFiles(t).key) } : {}),
  };
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

async function stopProcess(proc: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill(signal);
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
    crash: () => stopProcess(proc, 'SIGKILL'),
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

/** Sends PING (over TLS when `t` is given) and resolves whether the reply starts with `expect`. */
function redisReply(port: number, expect: RegExp, t?: ServerTls): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = t
      ? tls.connect({ host: '127.0.0.1', port, ...clientTlsOptions(t) })
      : net.connect({ host: '127.0.0.1', port });
    let reply = '';
    sock.setTimeout(1000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once(t ? 'secureConnect' : 'connect', () => sock.write('PING\r\n'));
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

/** etcd answers its /health endpoint on the client port once it has a leader. */
async function etcdHealthy(port: number, t?: ServerTls): Promise<boolean> {
  if (!t) {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return false;
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  }
  // fetch() cannot be given a CA; node:https can.
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/health', timeout: 1000, ...clientTlsOptions(t) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 && (JSON.parse(body) as { health?: string }).health === 'true');
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

export interface EtcdOptions {
  /** Serve clients over TLS only (https). */
  tls?: ServerTls;
  /**
   * Enable etcd authentication with a user "root" (role root) of this
   * password; the URL then carries root:PASSWORD@.
   */
  rootPassword?: string;
  /** Lifetime in seconds of an idle auth token (etcd's --auth-token-ttl; default 300). */
  authTokenTtl?: number;
  /** Largest request the server accepts (--max-request-bytes; default 1.5 MiB). */
  maxRequestBytes?: number;
  /** Size of the database at which etcd raises its NOSPACE alarm (--quota-backend-bytes). */
  quotaBackendBytes?: number;
}

/** Creates user root with role root and turns authentication on, through the etcd3 client. */
async function enableEtcdAuth(port: number, password: string, t: ServerTls | undefined): Promise<void> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({
    hosts: `${t ? 'https' : 'http'}://127.0.0.1:${port}`,
    ...(t ? {
      credentials: {
        rootCertificate: fs.readFileSync(t.ca),
        ...(t.clientCertAuth ? { certChain: fs.readFileSync(clientFiles(t).cert), privateKey: fs.readFileSync(clientFiles(t).key) } : {}),
      },
    } : {}),
    defaultCallOptions: () => ({ deadline: Date.now() + 5000 }),
  });
  try {
    await client.role('root').create();
    await client.user('root').create(password);
    await client.user('root').addRole('root');
    await client.auth.authEnable();
  } finally {
    client.close();
  }
}

export async function startEtcd(options: EtcdOptions = {}): Promise<TestServer> {
  const port = await freePort();
  const peerPort = await freePort();
  const t = options.tls;
  const clientScheme = t ? 'https' : 'http';
  const query = t ? `?${tlsQuery(t)}` : '';
  const creds = options.rootPassword !== undefined ? `root:${encodeURIComponent(options.rootPassword)}@` : '';
  const server = await startServer(
    {
      name: 'etcd',
      binary: '/usr/bin/etcd',
      args: (dataDir) => [
        '--name', 'strand-test',
        '--data-dir', dataDir,
        '--listen-client-urls', `${clientScheme}://127.0.0.1:${port}`,
        '--advertise-client-urls', `${clientScheme}://127.0.0.1:${port}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `strand-test=http://127.0.0.1:${peerPort}`,
        '--initial-cluster-state', 'new',
        '--log-level', 'warn',
        ...(t ? ['--cert-file', t.cert, '--key-file', t.key] : []),
        // etcd 3.4 demands a client certificate whenever it has a trusted CA
        // file, so that goes only with client certificate auth.
        ...(t?.clientCertAuth ? ['--client-cert-auth', '--trusted-ca-file', t.ca] : []),
        ...(options.authTokenTtl !== undefined ? ['--auth-token-ttl', String(options.authTokenTtl)] : []),
        ...(options.maxRequestBytes !== undefined ? ['--max-request-bytes', String(options.maxRequestBytes)] : []),
        ...(options.quotaBackendBytes !== undefined ? ['--quota-backend-bytes', String(options.quotaBackendBytes)] : []),
      ],
      ready: (p) => etcdHealthy(p, t),
    },
    port,
    `etcd://${creds}127.0.0.1:${port}${query}`,
  );
  if (options.rootPassword !== undefined) {
    try {
      await enableEtcdAuth(port, options.rootPassword, t);
    } catch (err) {
      await server.stop();
      throw err;
    }
  }
  return server;
}

export interface RedisOptions {
  /**
   * Persistence: 'always' (append-only file fsynced on every write, the
   * default; data survives kill() + restart()), 'everysec' (AOF fsynced once a
   * second), 'default' (no persistence flags: Redis's built-in defaults, which
   * are Debian's: RDB snapshots only), 'none' (nothing kept).
   */
  persistence?: 'always' | 'everysec' | 'default' | 'none';
  /** Require this password (the URL then carries it). */
  password?: string;
  /** Serve TLS only (the plain port is off); the URL is rediss://...?ca=... */
  tls?: ServerTls;
  /** Disable CONFIG (rename-command CONFIG ""), as managed Redis services do. */
  noConfig?: boolean;
  /** Start as a replica of this port on 127.0.0.1. */
  replicaOf?: number;
}

function persistenceArgs(p: NonNullable<RedisOptions['persistence']>): string[] {
  switch (p) {
    case 'always': return ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
    case 'everysec': return ['--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'];
    case 'default': return [];
    case 'none': return ['--save', '', '--appendonly', 'no'];
  }
}

export async function startRedis(options: RedisOptions = {}): Promise<TestServer> {
  const port = await freePort();
  const t = options.tls;
  const creds = options.password !== undefined ? `:${encodeURIComponent(options.password)}@` : '';
  return startServer(
    {
      name: 'redis',
      binary: '/usr/bin/redis-server',
      args: (dataDir) => [
        ...(t
          ? [
            '--port', '0',
            '--tls-port', String(port),
            '--tls-cert-file', t.cert,
            '--tls-key-file', t.key,
            '--tls-ca-cert-file', t.ca,
            '--tls-auth-clients', t.clientCertAuth ? 'yes' : 'no',
          ]
          : ['--port', String(port)]),
        '--bind', '127.0.0.1',
        '--dir', dataDir,
        ...persistenceArgs(options.persistence ?? 'always'),
        '--daemonize', 'no',
        '--loglevel', 'warning',
        ...(options.password !== undefined ? ['--requirepass', options.password] : []),
        ...(options.noConfig ? ['--rename-command', 'CONFIG', ''] : []),
        ...(options.replicaOf !== undefined ? ['--replicaof', '127.0.0.1', String(options.replicaOf)] : []),
        // A master waits 5 s for more replicas before a full sync by default.
        '--repl-diskless-sync-delay', '0',
      ],
      // Without the password PING answers -NOAUTH, which still proves it is up.
      ready: (p) => redisReply(p, options.password !== undefined ? /^(\+PONG|-NOAUTH)/ : /^\+PONG/, t),
    },
    port,
    t ? `rediss://${creds}127.0.0.1:${port}?${tlsQuery(t).replace(/^tls=1&/, '')}` : `redis://${creds}127.0.0.1:${port}`,
  );
}

export interface SentinelOptions {
  /** The master's name the sentinels monitor. */
  masterName: string;
  /** Port of the master on 127.0.0.1. */
  masterPort: number;
  /** Sentinels that must agree the master is down (default 2). */
  quorum?: number;
  /** How long the master must be silent before it counts as down (default 1000 ms). */
  downAfterMs?: number;
}

/** One redis-sentinel monitoring a master; its url is the sentinel's own host:port. */
export async function startSentinel(options: SentinelOptions): Promise<TestServer> {
  const port = await freePort();
  return startServer(
    {
      name: 'sentinel',
      binary: '/usr/bin/redis-sentinel',
      args: (dataDir) => {
        // Sentinel rewrites its file with what it learns; keep that across restarts.
        const conf = path.join(dataDir, 'sentinel.conf');
        if (!fs.existsSync(conf)) {
          fs.writeFileSync(conf, [
            `port ${port}`,
            'bind 127.0.0.1',
            'protected-mode no',
            `dir ${dataDir}`,
            'loglevel warning',
            `sentinel monitor ${options.masterName} 127.0.0.1 ${options.masterPort} ${options.quorum ?? 2}`,
            `sentinel down-after-milliseconds ${options.masterName} ${options.downAfterMs ?? 1000}`,
            `sentinel failover-timeout ${options.masterName} 10000`,
            `sentinel parallel-syncs ${options.masterName} 1`,
            '',
          ].join('\n'));
        }
        return [conf];
      },
      ready: (p) => redisReply(p, /^\+PONG/),
    },
    port,
    `127.0.0.1:${port}`,
  );
}

/** Stops every server these helpers started and have not stopped yet. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}
