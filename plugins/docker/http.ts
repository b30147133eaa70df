// Docker's legacy plugin transport: POST /<Interface>.<Method> with a JSON
// body (often none) over a unix socket, always answered with JSON. Failures
// are HTTP 500 carrying both Err (the NetworkDriver proxy reads it) and Error
// (the IpamDriver proxy reads only that); unknown methods are 404, a body
// over 4 MiB is 413 and closes the connection.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { isStrandError } from '../../common/errors.js';

/** A method's handler: the parsed body (undefined when empty) in, the JSON answer out. */
export type Handler = (body: unknown) => Promise<object>;
export type Handlers = Record<string, Handler>;

const MAX_BODY = 4 << 20;
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

export interface Reply {
  status: number;
  body: object;
}

function failure(status: number, message: string): Reply {
  return { status, body: { Err: message, Error: message } };
}

/** Answers one request: the transport without the socket, so tests can replay captured bodies. */
export async function dispatch(handlers: Handlers, method: string, path: string, raw: string): Promise<Reply> {
  const name = path.replace(/^\//, '');
  const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
  if (method !== 'POST' || !handler) return failure(404, `strand: ${method} ${path} is not implemented`);
  let body: unknown;
  try {
    body = raw.trim() === '' ? undefined : JSON.parse(raw);
  } catch (err) {
    return failure(400, `strand: ${name}: the request body is not JSON: ${(err as Error).message}`);
  }
  try {
    return { status: 200, body: await handler(body) };
  } catch (err) {
    // Docker prefixes the method name itself; the message says what to change.
    const message = err instanceof Error ? err.message : String(err);
    if (!isStrandError(err)) console.error(`strand docker plugin: ${name}: ${err instanceof Error ? (err.stack ?? message) : message}`);
    return failure(500, message);
  }
}

/**
 * The body as text, or null once it passes MAX_BODY. A body too large is read
 * to its end and thrown away rather than cut off: destroying the socket while
 * the client still writes resets the connection, and the client never sees why.
 */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= MAX_BODY) parts.push(b);
      else parts.length = 0;
    });
    req.on('end', () => resolve(size > MAX_BODY ? null : Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, reply: Reply, close = false): void {
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text), ...(close ? { Connection: 'close' } : {}) });
  res.end(text);
}

/** The answer to a body over MAX_BODY: 413 with Docker's error JSON naming the limit; the connection is then closed. */
export function tooLarge(method: string, path: string): Reply {
  const name = path.replace(/^\//, '');
  return failure(413, `strand: ${method} ${name}: the request body is over ${MAX_BODY} bytes (${MAX_BODY >> 20} MiB), the most the plugin reads; send a smaller request`);
}

/** Listens on a unix socket (mode 0600: only root, i.e. dockerd, may call); resolves once it accepts connections. */
export async function servePlugin(path: string, handlers: Handlers): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  rmSync(path, { force: true }); // left by a daemon that died
  const server = createServer((req, res) => {
    readBody(req).then(
      (raw) => (raw === null ? send(res, tooLarge(req.method ?? '', req.url ?? ''), true) : dispatch(handlers, req.method ?? '', req.url ?? '', raw).then((reply) => send(res, reply))),
      (err: Error) => send(res, failure(400, `strand: ${err.message}`), true),
    );
  });
  // dockerd keeps connections open and has no timeout of its own.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}
