// The native CNI front (plugins/cni/shim/strand-cni-shim.c) against test
// daemons on a unix socket in a temp dir: answers in many small writes, large
// answers in slow chunks, a daemon that dies mid-answer, never answers, or
// closes at once, and stdin over the request limit. stdout must be the whole
// answer or a CNI error JSON with the right code, the exit code the daemon's.
// No network namespace, link or rule is touched: only unix sockets.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveCni } from '../../../../agent/cni-server.js';
import { buildShim, compiler, shimSource } from '../../../../plugins/cni/install.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the stand-in for the Node plugin prints: that it ran, what it read, and how many sockets it inherited besides stdio (Node's pipes are socket pairs). */
const FALLBACK = `const fs = require('fs');
const stdin = fs.readFileSync(0);
const sockets = fs.readdirSync('/proc/self/fd').filter((f) => Number(f) > 2).filter((f) => { try { return fs.readlinkSync('/proc/self/fd/' + f).startsWith('socket:'); } catch { return false; } }).length;
process.stdout.write(JSON.stringify({ fallback: true, stdinBytes: stdin.length, sockets }) + '\\n');
process.exit(3);
`;

/** A listener that never accepts: its event loop is blocked, so the kernel's backlog fills. */
const STUCK_LISTENER = `const net = require('net');
const s = net.createServer();
s.listen({ path: process.argv[1], backlog: 1 }, () => {
  process.stdout.write('ready\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000);
  process.exit(0);
});`;

/** A daemon that answers half and is killed. */
const DYING_DAEMON = `const net = require('net');
const s = net.createServer({ allowHalfOpen: true }, (c) => {
  c.on('data', () => {});
  c.on('end', () => {
    c.write('exit 0 length 1000\\n{"cniVersion":"1.0.0"', () => process.kill(process.pid, 'SIGKILL'));
  });
});
s.listen(process.argv[1], () => process.stdout.write('ready\\n'));`;

const NETCONF = JSON.stringify({ cniVersion: '1.0.0', name: 'front-test', type: 'strand-bridge' });

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function framed(code: number, body: string | Buffer): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(`exit ${code} length ${b.length}\n`), b]);
}

/** A request as the front frames it: version, header lines, stdin. */
function parseRequest(data: Buffer): { version: string; header: Record<string, string>; stdin: Buffer } {
  const end = data.indexOf('\n\n');
  assert.ok(end > 0, `request has a header: ${JSON.stringify(data.subarray(0, 200).toString())}`);
  const [version, ...lines] = data.subarray(0, end).toString().split('\n');
  const header = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { version: version!, header, stdin: data.subarray(end + 2) };
}

function cniError(run: Run, code: number, msg: RegExp): void {
  assert.equal(run.signal, null, `no signal: ${JSON.stringify(run)}`);
  assert.equal(run.code, 1, `exit 1: ${JSON.stringify(run)}`);
  assert.ok(run.stdout.endsWith('\n'), `one JSON line: ${JSON.stringify(run.stdout)}`);
  const err = JSON.parse(run.stdout) as { code: number; msg: string };
  assert.equal(err.code, code, run.stdout);
  assert.match(err.msg, msg);
}

/** Processes whose parent is this one and that are zombies. */
function zombies(): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' && Number(fields[1]) === process.pid) found.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function openFds(): string[] {
  return readdirSync('/proc/self/fd').map((fd) => {
    try {
      return `${fd} ${readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} ?`; // readdir's own
    }
  });
}

describe('CNI native front (strand-cni-shim.c)', function () {
  this.timeout(15000);
  let buildDir = '';
  let front = '';
  let fdsBefore: string[] = [];
  // Undone after each test, last first, whether it passed or not.
  const cleanups: (() => void | Promise<void>)[] = [];
  const children: ChildProcess[] = [];

  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-shim-test-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };

  const track = (child: ChildProcess): ChildProcess => {
    children.push(child);
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    });
    return child;
  };

  /** A test daemon on RUN_DIR/cni.sock; `serve` gets each connection and the whole request once the front has shut its side. */
  const daemon = async (serve: (conn: Socket, request: Promise<Buffer>) => void): Promise<{ runDir: string; requests: Buffer[] }> => {
    const runDir = tempDir();
    const requests: Buffer[] = [];
    const sockets = new Set<Socket>();
    const server: Server = createServer({ allowHalfOpen: true }, (conn) => {
      sockets.add(conn);
      conn.on('close', () => sockets.delete(conn));
      conn.on('error', () => undefined);
      const parts: Buffer[] = [];
      conn.on('data', (b: Buffer) => parts.push(b));
      const request = new Promise<Buffer>((resolve) => conn.on('end', () => resolve(Buffer.concat(parts))));
      void request.then((r) => requests.push(r));
      serve(conn, request);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(join(runDir, 'cni.sock'), resolve);
    });
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    });
    return { runDir, requests };
  };

  /** A Node script as a child (a daemon that must really die or stall), resolved once it printed "ready". */
  const script = async (source: string, arg: string): Promise<ChildProcess> => {
    const child = track(spawn(process.execPath, ['-e', source, arg], { stdio: ['ignore', 'pipe', 'inherit'] }));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`helper exited ${code} before it was ready`)));
    });
    return child;
  };

  /** Runs the front once: stdin written whole, killed if it outlives `limitMs`. */
  const runFront = (runDir: string, env: Record<string, string> = {}, stdin: string | Buffer = NETCONF, limitMs = 8000): Promise<Run> => {
    const started = process.hrtime.bigint();
    const child = track(
      spawn(front, [], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          STRAND_RUN_DIR: runDir,
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: 'front-test-1',
          CNI_NETNS: '/var/run/netns/none',
          CNI_IFNAME: 'eth0',
          CNI_PATH: '/opt/cni/bin',
          ...env,
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.stdin!.on('error', () => undefined); // a front that refuses stdin stops reading it: EPIPE here
    child.stdin!.end(stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    return new Promise((resolve) => {
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Number(process.hrtime.bigint() - started) / 1e6 });
      });
    });
  };

  before(async function () {
    const cc = compiler();
    if (!cc) this.skip();
    const source = shimSource();
    assert.ok(source, 'the front source is found');
    buildDir = mkdtempSync(join(tmpdir(), 'strand-shim-build-'));
    const fallback = join(buildDir, 'fallback.cjs');
    writeFileSync(fallback, FALLBACK);
    front = join(buildDir, 'strand-bridge');
    buildShim(cc!, source!, 'strand-bridge', fallback, front);
    // One run first: spawning sets up this process's child-signal pipe for good; fds are counted after it.
    const run = await runFront(buildDir, { STRAND_CNI_REQUIRE_DAEMON: '1' });
    assert.equal(run.code, 1);
    fdsBefore = openFds();
  });

  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  after(() => {
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  });

  it('passes an answer that arrives in many small writes whole, header split too', async () => {
    const body = JSON.stringify({ cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '0a:58:0a:61:00:05' }], ips: Array.from({ length: 60 }, (_, i) => ({ address: `10.97.${i}.5/24`, gateway: `10.97.${i}.1` })), note: 'é ü' }) + '\n';
    const { runDir, requests } = await daemon(async (conn, request) => {
      await request;
      const answer = framed(0, body);
      let i = 0;
      for (; i < 24; i++) {
        conn.write(answer.subarray(i, i + 1)); // the first line a byte at a time
        await sleep(1);
      }
      for (; i < answer.length; i += 61) {
        conn.write(answer.subarray(i, i + 61));
        await sleep(1);
      }
      conn.end();
    });
    const run = await runFront(runDir);
    assert.equal(run.code, 0, JSON.stringify(run));
    assert.equal(run.stdout, body);
    assert.equal((JSON.parse(run.stdout) as { ips: unknown[] }).ips.length, 60);
    const req = parseRequest(requests[0]!);
    assert.equal(req.version, 'strand-cni/2');
    assert.equal(req.header.plugin, 'strand-bridge');
    assert.equal(req.header.CNI_COMMAND, 'ADD');
    assert.equal(req.header.STRAND_RUN_DIR, runDir);
    assert.equal(req.stdin.toString(), NETCONF);
  });

  it('passes 200 KB sent in slow chunks whole, and 1 MiB in one write', async () => {
    for (const [size, chunk, delay] of [
      [200_000, 16_384, 15],
      [1 << 20, 1 << 20, 0],
    ] as const) {
      const body = JSON.stringify({ cniVersion: '1.0.0', pad: 'x'.repeat(size) }) + '\n';
      const { runDir } = await daemon(async (conn, request) => {
        await request;
        const answer = framed(0, body);
        for (let i = 0; i < answer.length; i += chunk) {
          conn.write(answer.subarray(i, i + chunk));
          if (delay) await sleep(delay);
        }
        conn.end();
      });
      const run = await runFront(runDir);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.length, body.length, `all ${body.length} bytes`);
      assert.equal(run.stdout, body);
      JSON.parse(run.stdout);
    }
  });

  it("exits with the daemon's code and passes its error JSON as it is", async () => {
    const body = JSON.stringify({ cniVersion: '1.0.0', code: 7, msg: 'invalid network config' }) + '\n';
    const { runDir } = await daemon(async (conn, request) => {
      await request;
      conn.end(framed(2, body));
    });
    const run = await runFront(runDir);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, body);
  });

  it('turns a daemon that dies mid-answer into code 11, not exit 0 with a part', async () => {
    // Closed after part of the answer ...
    const body = JSON.stringify({ cniVersion: '1.0.0', pad: 'y'.repeat(5000) }) + '\n';
    const { runDir } = await daemon(async (conn, request) => {
      await request;
      conn.end(framed(0, body).subarray(0, 3000));
    });
    cniError(await runFront(runDir), 11, new RegExp(`strand daemon at ${runDir}/cni\\.sock: the answer was cut after \\d+ of ${Buffer.byteLength(body)} bytes \\(the connection was closed\\); try again`));

    // ... and a daemon process killed after 21 bytes of JSON.
    const runDir2 = tempDir();
    await script(DYING_DAEMON, join(runDir2, 'cni.sock'));
    cniError(await runFront(runDir2), 11, /cut after 21 of 1000 bytes \(the connection was closed\)/);
  });

  it('gives up on a daemon that never answers after STRAND_CNI_ANSWER_TIMEOUT', async () => {
    const { runDir, requests } = await daemon(() => undefined);
    const run = await runFront(runDir, { STRAND_CNI_ANSWER_TIMEOUT: '0.3' });
    cniError(run, 11, new RegExp(`strand daemon at ${runDir}/cni\\.sock: no complete answer within 0\\.3 s \\(waiting for the answer; STRAND_CNI_ANSWER_TIMEOUT\\); try again`));
    assert.ok(run.ms >= 250 && run.ms < 2000, `${run.ms} ms`);
    await sleep(20);
    assert.equal(requests.length, 1, 'the request was sent whole');

    // Also when it stalls halfway through the answer.
    const half = await daemon(async (conn, request) => {
      await request;
      conn.write('exit 0 length 100\n{"cni');
    });
    const stalled = await runFront(half.runDir, { STRAND_CNI_ANSWER_TIMEOUT: '0.2' });
    cniError(stalled, 11, /no complete answer within 0\.2 s \(receiving the answer;/);
  });

  it('turns a daemon that accepts and closes at once into code 11', async () => {
    const { runDir } = await daemon((conn) => conn.destroy());
    cniError(await runFront(runDir), 11, new RegExp(`strand daemon at ${runDir}/cni\\.sock: (no answer|connection lost while sending the request) \\(.+\\); try again`));

    // The same once the request has come in: nothing said.
    const silent = await daemon(async (conn, request) => {
      await request;
      conn.end();
    });
    cniError(await runFront(silent.runDir), 11, /: no answer \(the connection was closed\); try again/);
  });

  it('refuses answers without a length or with more than announced (code 11)', async () => {
    const old = await daemon(async (conn, request) => {
      await request;
      conn.end('exit 0\n{"cniVersion":"1.0.0"}\n');
    });
    cniError(await runFront(old.runDir), 11, /the answer has no length \(a daemon older than this front\? restart strand daemon\)/);
    const long = await daemon(async (conn, request) => {
      await request;
      conn.end('exit 0 length 3\n{}\n-extra');
    });
    cniError(await runFront(long.runDir), 11, /longer than the 3 bytes it announced/);
    // Also when the extra bytes come in a later write: the end of the stream must follow the announced bytes.
    const later = await daemon(async (conn, request) => {
      await request;
      conn.write('exit 0 length 3\n{}\n');
      await sleep(30);
      conn.end('{}\n');
    });
    cniError(await runFront(later.runDir), 11, /longer than the 3 bytes it announced/);
  });

  it('refuses 20 MiB of stdin with code 7 naming the limit, sends the daemon nothing, and passes 15 MiB', async () => {
    const seen: number[] = [];
    const { runDir } = await daemon(async (conn, request) => {
      const r = await request;
      seen.push(r.length);
      const { stdin } = parseRequest(r);
      conn.end(framed(0, JSON.stringify({ cniVersion: '1.0.0', stdinBytes: stdin.length }) + '\n'));
    });
    const big = Buffer.alloc(20 << 20, 0x20);
    big.write(NETCONF);
    const run = await runFront(runDir, {}, big);
    cniError(run, 7, /the network config on stdin is too large: a request to strand daemon at .*cni\.sock is limited to 16 MiB \(16777216 bytes/);
    await sleep(20);
    assert.deepEqual(seen, [0], 'the daemon saw a connection and not one byte of it');

    const fits = Buffer.alloc(15 << 20, 0x20);
    fits.write(NETCONF);
    const ok = await runFront(runDir, {}, fits);
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal((JSON.parse(ok.stdout) as { stdinBytes: number }).stdinBytes, 15 << 20);
  });

  it('runs the Node plugin when nothing listens, stdin unread and no socket inherited; fails with 11 when the daemon is required', async () => {
    const runDir = tempDir();
    const run = await runFront(runDir);
    assert.equal(run.code, 3, JSON.stringify(run));
    assert.deepEqual(JSON.parse(run.stdout), { fallback: true, stdinBytes: NETCONF.length, sockets: 0 });
    cniError(await runFront(runDir, { STRAND_CNI_REQUIRE_DAEMON: '1' }), 11, new RegExp(`strand daemon is not reachable at ${runDir}/cni\\.sock \\(No such file or directory\\) and STRAND_CNI_REQUIRE_DAEMON=1`));
  });

  it('bounds the connect by STRAND_CNI_CONNECT_TIMEOUT, then runs the Node plugin', async () => {
    const runDir = tempDir();
    const path = join(runDir, 'cni.sock');
    await script(STUCK_LISTENER, path);
    // Fill the listener's backlog: connects succeed until it is full, then fail with EAGAIN.
    let full = false;
    for (let i = 0; i < 16 && !full; i++) {
      const c = createConnection(path);
      cleanups.push(() => void c.destroy());
      full = await new Promise<boolean>((resolve) => {
        c.once('connect', () => resolve(false));
        c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EAGAIN'));
      });
    }
    assert.ok(full, 'the backlog is full');
    const required = await runFront(runDir, { STRAND_CNI_CONNECT_TIMEOUT: '0.3', STRAND_CNI_REQUIRE_DAEMON: '1' });
    cniError(required, 11, /not reachable at .*cni\.sock \(connect timed out \(STRAND_CNI_CONNECT_TIMEOUT\)\)/);
    assert.ok(required.ms >= 250 && required.ms < 2000, `${required.ms} ms`);
    const fallback = await runFront(runDir, { STRAND_CNI_CONNECT_TIMEOUT: '0.3' });
    assert.equal(fallback.code, 3);
    assert.deepEqual(JSON.parse(fallback.stdout), { fallback: true, stdinBytes: NETCONF.length, sockets: 0 });
  });

  it("is answered by strand's own daemon end (agent/cni-server.ts), and that still speaks version 1", async () => {
    const runDir = tempDir();
    const server = await serveCni(join(runDir, 'cni.sock'));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const run = await runFront(runDir, { CNI_COMMAND: 'VERSION' });
    assert.equal(run.code, 0, run.stdout);
    assert.deepEqual(JSON.parse(run.stdout), { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });

    const raw = async (request: string): Promise<string> => {
      const c = createConnection({ path: join(runDir, 'cni.sock'), allowHalfOpen: true });
      cleanups.push(() => void c.destroy());
      const parts: Buffer[] = [];
      c.on('data', (b: Buffer) => parts.push(b));
      c.end(request);
      await new Promise((resolve) => c.once('end', resolve));
      return Buffer.concat(parts).toString();
    };
    // An older front's request, answered without a length.
    const v1 = await raw(`strand-cni/1\nplugin=strand-bridge\nCNI_COMMAND=VERSION\n\n${NETCONF}`);
    assert.match(v1, /^exit 0\n\{"cniVersion":"1\.0\.0","supportedVersions"/);
    // The length counts bytes, not characters.
    const v2 = await raw(`strand-cni/2\nplugin=strand-é\nCNI_COMMAND=VERSION\n\n{}`);
    const m = /^exit 1 length (\d+)\n/.exec(v2);
    assert.ok(m, v2);
    const body = Buffer.from(v2).subarray(Buffer.byteLength(m[0]));
    assert.equal(body.length, Number(m[1]));
    assert.match(body.toString(), /no CNI plugin \\"strand-é\\"/);
    // A request the daemon cannot parse is still answered in the framing its sender reads.
    assert.match(await raw('strand-cni/2\nno header end'), /^exit 1 length \d+\n\{"code":999,"msg":"strand daemon: bad request: request has no end of header"\}\n$/);
  });

  it('leaves no zombie and no open fd behind', async () => {
    await sleep(50);
    assert.deepEqual(zombies(), []);
    for (const child of children) assert.ok(child.exitCode !== null || child.signalCode !== null, `child ${child.pid} has exited`);
    const now = openFds();
    const added = now.filter((fd) => !fdsBefore.includes(fd));
    assert.deepEqual(added, [], `fds opened by the tests and still open`);
  });
});
