// `npm run demo`: strand's main job on this machine. Until the single-host
// drivers land, it shows the kernel layer at work: two namespaces joined by a
// veth pair, addresses, a route, a ping across, and everything removed.
import { spawnSync } from 'node:child_process';
import { Netlink, createNetns, deleteNetns, listNetns, writeSysctl } from '../netlink/index.js';

const tag = process.pid.toString(36);
const nsA = `strand-demo-a-${tag}`;
const nsB = `strand-demo-b-${tag}`;

function step(text: string): void {
  console.log(`• ${text}`);
}

function ping(fromNs: string, ip: string): void {
  // The demo's one outside program: ping, as a user would run it, inside the namespace.
  const r = spawnSync('ip', ['netns', 'exec', fromNs, 'ping', '-c', '3', '-i', '0.2', '-W', '2', ip], { encoding: 'utf8' });
  const summary = r.stdout.split('\n').filter((l) => /packets transmitted|rtt/.test(l));
  for (const line of summary) console.log(`    ${line}`);
  if (r.status !== 0) throw new Error(`ping ${ip} from ${fromNs} failed: ${r.stderr || r.stdout}`);
}

const created: string[] = [];
try {
  const t0 = performance.now();
  const a = createNetns(nsA);
  created.push(nsA);
  const b = createNetns(nsB);
  created.push(nsB);
  step(`created namespaces ${nsA} and ${nsB} (ip netns lists them: ${listNetns().filter((n) => n.endsWith(tag)).length} of 2)`);

  const nla = Netlink.open(a);
  const nlb = Netlink.open(b);
  nla.links.add({ kind: 'veth', name: 'eth0', mtu: 1500, up: true, peer: { name: 'eth0', netns: b } });
  nlb.links.set('eth0', { up: true });
  nla.links.set('lo', { up: true });
  nlb.links.set('lo', { up: true });
  step('veth pair eth0 <-> eth0 created with its peer straight inside the second namespace, both up');

  nla.addresses.add('eth0', '10.200.0.1/24');
  nla.addresses.add('eth0', 'fd00:200::1/64', { noDad: true });
  nlb.addresses.add('eth0', '10.200.0.2/24');
  nlb.addresses.add('eth0', 'fd00:200::2/64', { noDad: true });
  nlb.addresses.add('lo', '10.201.0.1/32');
  writeSysctl('net.ipv4.ip_forward', 1, b);
  nla.routes.add({ dst: '10.201.0.0/24', gateway: '10.200.0.2' });
  step('addresses 10.200.0.1/24 and 10.200.0.2/24 (plus IPv6), and a route to 10.201.0.0/24 via the second namespace');
  const setupMs = performance.now() - t0;

  for (const l of nla.links.list()) console.log(`    ${nsA}: ${l.name} index ${l.index} ${l.kind ?? 'device'} mtu ${l.mtu} ${l.up ? 'up' : 'down'} ${l.mac ?? ''}`);
  for (const r of nla.routes.list({ family: 4 })) console.log(`    ${nsA}: route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} scope ${r.scope}`);

  step('ping 10.200.0.2 (the peer), 10.201.0.1 (through the route) and fd00:200::2 (IPv6)');
  ping(nsA, '10.200.0.2');
  ping(nsA, '10.201.0.1');
  ping(nsA, 'fd00:200::2');
  nla.close();
  nlb.close();
  a.close();
  b.close();
  console.log(`set-up through strand's netlink layer took ${setupMs.toFixed(1)} ms, no process spawned`);
} finally {
  for (const name of created.reverse()) deleteNetns(name);
  const left = listNetns().filter((n) => n.endsWith(tag));
  step(left.length ? `LEFT BEHIND: ${left.join(', ')}` : 'removed both namespaces (and the veth pair with them); nothing left behind');
  if (left.length) process.exitCode = 1;
}
