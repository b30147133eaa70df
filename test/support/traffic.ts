// Real traffic between test namespaces: tiny TCP/UDP servers that answer
// with their name and the peer address they saw, and one-shot clients.
// Node itself is the tool (`ip netns exec NS node -e ...`), so nothing
// beyond the test machine's node and iproute2 is needed.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestBed } from './harness.js';

/** The answering server program (echo-server.ts), for namespaces and sandboxes alike. */
export const ECHO_SERVER = join(dirname(fileURLToPath(import.meta.url)), 'echo-server.js');

export type Proto = 'tcp' | 'udp';

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
  const ports = proto === 'tcp' ? [String(port), ''] : ['', String(port)];
  const child = bed.process(spawn('ip', ['netns', 'exec', ns, process.execPath, ECHO_SERVER, name, ...ports], { stdio: ['ignore', 'pipe', 'pipe'] }));
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

/** Repeats a probe until it answers (a server sandbox may still be starting); null if it never does. */
export async function answer(probe: () => Promise<string | null>, tries = 20): Promise<string | null> {
  for (let i = 0; i < tries; i++) {
    const got = await probe();
    if (got !== null) return got;
    await new Promise((r) => setTimeout(r, 150));
  }
  return null;
}
