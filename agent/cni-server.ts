// The daemon's end of strand's CNI thin front: requests arrive on a unix
// socket (plugins/cni/shim/strand-cni-shim.c frames them), run through the
// same plugin handlers a plugin process would use, and the answer goes back
// as "exit N length L\n" and the plugin's stdout, L bytes (a request of
// version 1, from an older front, gets "exit N\n" and stdout, no length).
// One process serves every verb, so no Node start per verb.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { runPlugin } from '../plugins/cni/protocol/skel.js';
import { bridgeHandlers } from '../plugins/cni/bridge/plugin.js';
import { macvlanHandlers } from '../plugins/cni/macvlan/plugin.js';
import { ipamHandlers } from '../plugins/cni/ipam/plugin.js';
import { overlayHandlers, type OverlayDaemon } from '../plugins/cni/overlay/plugin.js';
import type { PluginHandlers } from '../plugins/cni/protocol/types.js';
import { runDir as defaultRunDir } from '../common/defaults.js';

type Handlers = Record<string, PluginHandlers>;

/** In the daemon every plugin attaches through its controller; strand-overlay works only here (it needs the agent), the others also run on their own. */
const handlersFor = (daemon?: OverlayDaemon): Handlers => ({
  'strand-bridge': bridgeHandlers(daemon?.controller),
  'strand-macvlan': macvlanHandlers(daemon?.controller),
  'strand-ipam': ipamHandlers,
  'strand-overlay': overlayHandlers(daemon),
});

/** Only these variables cross the socket; the rest of the daemon's environment stays its own. */
const PASSED = new Set(['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH', 'STRAND_STORE', 'STRAND_RUN_DIR']);
/** Must equal MAX_REQUEST in the front, which refuses a larger request itself (CNI code 7). */
const MAX_REQUEST = 16 << 20;

export function cniSocketPath(runDir = defaultRunDir()): string {
  return `${runDir}/cni.sock`;
}

interface Request {
  version: number;
  plugin: string;
  env: Record<string, string>;
  stdin: Buffer;
}

function parseRequest(data: Buffer): Request {
  const end = data.indexOf('\n\n');
  if (end < 0) throw new Error('request has no end of header');
  const lines = data.subarray(0, end).toString('utf8').split('\n');
  if (lines[0] !== 'strand-cni/1' && lines[0] !== 'strand-cni/2') throw new Error(`unknown request version ${JSON.stringify(lines[0])}`);
  const req: Request = { version: lines[0] === 'strand-cni/2' ? 2 : 1, plugin: '', env: {}, stdin: data.subarray(end + 2) };
  for (const line of lines.slice(1)) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    if (key === 'plugin') req.plugin = line.slice(eq + 1);
    else if (PASSED.has(key)) req.env[key] = line.slice(eq + 1);
  }
  return req;
}

/** Version 2 gives the length of stdout, so the front can tell a whole answer from a cut one. */
function frame(version: number, code: number, stdout: string): string {
  return version === 2 ? `exit ${code} length ${Buffer.byteLength(stdout)}\n${stdout}` : `exit ${code}\n${stdout}`;
}

async function answer(req: Request, all: Handlers): Promise<string> {
  const handlers = all[req.plugin];
  if (!handlers) return frame(req.version, 1, `${JSON.stringify({ code: 999, msg: `strand daemon has no CNI plugin "${req.plugin}"` })}\n`);
  const chunks: Buffer[] = [];
  // A Writable that keeps each chunk as it is written: everything is there once the stream has finished.
  const stdout = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  const stderr = new Writable({
    write(chunk: Buffer, _enc, done) {
      process.stderr.write(`strand daemon: ${req.plugin}: ${chunk.toString()}`);
      done();
    },
  });
  const code = await runPlugin(handlers, { env: req.env, stdin: Readable.from([req.stdin]), stdout, stderr });
  await new Promise((resolve) => stdout.end(resolve));
  return frame(req.version, code, Buffer.concat(chunks).toString('utf8'));
}

function serveConnection(conn: Socket, handlers: Handlers): void {
  const parts: Buffer[] = [];
  let size = 0;
  conn.on('data', (b: Buffer) => {
    size += b.length;
    if (size > MAX_REQUEST) conn.destroy();
    else parts.push(b);
  });
  conn.on('error', () => undefined);
  conn.on('end', () => {
    const data = Buffer.concat(parts);
    // Even a request that does not parse is answered in the framing its sender reads.
    const version = data.subarray(0, 13).toString() === 'strand-cni/2\n' ? 2 : 1;
    let reply: Promise<string>;
    try {
      reply = answer(parseRequest(data), handlers);
    } catch (err) {
      reply = Promise.resolve(frame(version, 1, `${JSON.stringify({ code: 999, msg: `strand daemon: bad request: ${(err as Error).message}` })}\n`));
    }
    reply.then(
      (text) => conn.end(text),
      (err: Error) => conn.end(frame(version, 1, `${JSON.stringify({ code: 999, msg: `strand daemon: ${err.message}` })}\n`)),
    );
  });
}

/** Listens on the socket (root only); resolves once it accepts connections. `daemon` serves strand-overlay. */
export async function serveCni(path = cniSocketPath(), daemon?: OverlayDaemon): Promise<Server> {
  const handlers = handlersFor(daemon);
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  rmSync(path, { force: true }); // a socket file left by a daemon that died
  // Half-open: the front closes its side after the request and still reads the answer.
  const server = createServer({ allowHalfOpen: true }, (conn) => serveConnection(conn, handlers));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}
