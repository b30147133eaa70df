// Runs inside a sandbox for the MTU tests: a TCP echo (every byte back, then
// close) and an HTTP server whose GET /bytes/N answers N bytes of a known
// pattern, so a client can check that large segments crossed intact.
// usage: node payload-server.js ECHOPORT HTTPPORT
import { createServer } from 'node:net';
import { createServer as createHttp } from 'node:http';

const [echoPort = '7000', httpPort = '8080'] = process.argv.slice(2);
export const patternByte = (i: number): number => i % 251;

let pending = 2;
const ready = (): void => {
  if (--pending === 0) console.log('ready');
};
createServer((s) => {
  s.on('error', () => undefined);
  s.pipe(s);
}).listen(Number(echoPort), ready);

createHttp((req, res) => {
  const n = Number(/^\/bytes\/(\d+)$/.exec(req.url ?? '')?.[1] ?? -1);
  if (n < 0) return void res.writeHead(404).end();
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = patternByte(i);
  res.writeHead(200, { 'content-length': String(n) }).end(body);
}).listen(Number(httpPort), ready);
