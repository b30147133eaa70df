// Real traffic between test namespaces: tiny TCP/UDP servers that answer
// with their name and the peer address they saw, and one-shot clients.
// Node itself is the tool (`ip netns exec NS node -e ...`), so nothing
// beyond the test machine's node and iproute2 is needed.
import { spawn } from 'node:child_process';
import type { TestBed } from '../harness.js';

export type Proto = 'tcp' | 'udp';

// argv: proto port name. Listens on every v4 and v6 address; answers "name peer".
const SERVER = `
const [proto, port, name] = process.argv.slice(1);
const peer = (a) => a.replace(/^::ffff:/, '');
if (proto === 'tcp') {
  require('net').createServer((s) => { s.on('error', () => {}); s.end(name + ' ' + peer(s.remoteAddress) + '\\n'); })
    .listen({ port: +port, host: '::', ipv6Only: false }, () => console.log('ready'));
} else {
  const u = require('dgram').createSocket({ type: 'udp6', ipv6Only: false });
  u.on('message', (m, r) => u.send(name + ' ' + peer(r.address) + '\\n', r.port, r.address));
  u.bind(+port, '::', () => console.log('ready'));
}`;

// argv: proto host port timeoutMs. Prints the answer, or exits non-zero.
const CLIENT = `
const [proto, host, port, ms] = process.argv.slice(1);
setTimeout(() => { console.log('TIMEOUT'); process.exit(2); }, +ms);
if (proto === 'tcp') {
  const s = require('net').connect({ host, port: +port });
  let out = '';
  s.on('data', (d) => (out += d));
  s.on('end', () => { process.stdout.write(out); process.exit(0); });
  s.on('error', (e) => { console.log('ERR ' + e.code); process.exit(1); });
} else {
  const u = require('dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
  u.on('message', (m) => { process.stdout.write(m.toString()); process.exit(0); });
  u.on('error', (e) => { console.log('ERR ' + e.code); process.exit(1); });
  const send = () => u.send('hi', +port, host);
  send();
  setInterval(send, 300); // datagrams carry no retransmission of their own
}`;

/** Starts an answering server in a namespace; killed when the test ends. */
export function serve(bed: TestBed, ns: string, proto: Proto, port: number, name: string): Promise<void> {
  const child = bed.process(spawn('ip', ['netns', 'exec', ns, 'node', '-e', SERVER, proto, String(port), name], { stdio: ['ignore', 'pipe', 'pipe'] }));
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`server ${name} in ${ns} exited (${code}): ${err}`)));
  });
}

/** One request; resolves to the server's answer ("name peer") or null when none came. */
export function ask(ns: string, proto: Proto, host: string, port: number, timeoutMs = 1500): Promise<string | null> {
  const child = spawn('ip', ['netns', 'exec', ns, 'node', '-e', CLIENT, proto, host, String(port), String(timeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.once('exit', (code) => resolve(code === 0 ? out.trim() : null));
  });
}
