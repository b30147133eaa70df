// A test program run inside sandboxes: answers every TCP connection and UDP
// datagram with "NAME PEER", the address it saw the client come from.
// usage: node echo-server.js NAME TCPPORT[,TCPPORT...] [UDPPORT[,UDPPORT...]]
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

const [name = 'echo', tcp = '', udp = ''] = process.argv.slice(2);
const peer = (a: string | undefined): string => (a ?? '?').replace(/^::ffff:/, '');
const ports = (list: string): number[] => list.split(',').filter(Boolean).map(Number);

let pending = ports(tcp).length + ports(udp).length;
const ready = (): void => {
  if (--pending === 0) console.log('ready');
};
for (const port of ports(tcp)) {
  createServer((s) => {
    s.on('error', () => undefined);
    s.end(`${name} ${peer(s.remoteAddress)}\n`);
  }).listen({ port, host: '::', ipv6Only: false }, ready);
}
for (const port of ports(udp)) {
  const u = createSocket({ type: 'udp6', ipv6Only: false });
  u.on('message', (_m, r) => u.send(`${name} ${peer(r.address)}\n`, r.port, r.address));
  u.bind(port, '::', ready);
}
