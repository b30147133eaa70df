// `npm run demo`: strand's main job on this machine, on the embedded store.
// A bridge network, two sandboxes talking to each other by address, an HTTP
// server in one reached through a published port from the host, then
// everything removed and checked gone.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listNetns, Netlink } from '../netlink/index.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'strand');
const NET = 'strand-demo';
const SUBNET = '10.210.0.0/24';
const HOST_PORT = 18080;

// A tiny HTTP server for the first sandbox: answers with its hostname and the caller's address.
const SERVER = `require('http').createServer((q, s) => s.end('hello from ' + require('os').hostname() + ' to ' + q.socket.remoteAddress.replace('::ffff:', '') + '\\n')).listen(80)`;
const CLIENT = (url: string) => `(async () => { for (let i = 0; i < 50; i++) { try { const r = await fetch('${url}'); process.stdout.write(await r.text()); return; } catch { await new Promise((r) => setTimeout(r, 100)); } } process.exit(1); })()`;

function strand(args: string[], quiet = false): string {
  if (!quiet) console.log(`$ strand ${args.map((a) => (/[\s'"()]/.test(a) ? `'${a.length > 40 ? a.slice(0, 37) + '...' : a}'` : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`strand ${args[0]} failed: ${r.stderr.trim()}`);
  if (!quiet && r.stdout.trim()) console.log(r.stdout.replace(/^/gm, '  ').trimEnd());
  return r.stdout;
}

function leftovers(): string[] {
  const nl = Netlink.open();
  try {
    const links = nl.links.list().map((l) => l.name).filter((n) => /^(sb-|sv|st)[0-9a-f]{12}$/.test(n));
    const rules = ['iptables-save', 'ip6tables-save'].flatMap((tool) => spawnSync(tool, [], { encoding: 'utf8' }).stdout?.split('\n').filter((l) => /strand/i.test(l)) ?? []);
    const ns = listNetns().filter((n) => n.startsWith('strand-'));
    return [...links.map((l) => `link ${l}`), ...ns.map((n) => `namespace ${n}`), ...rules.map((r) => `rule ${r}`)];
  } finally {
    nl.close();
  }
}

try {
  console.log('strand demo: a bridge network, two sandboxes, a published port\n');
  strand(['network', 'create', '--subnet', SUBNET, NET]);
  strand(['run', '-d', '--name', 'demo-web', '--hostname', 'web', '--network', NET, '-p', `127.0.0.1:${HOST_PORT}:80`, '--', process.execPath, '-e', SERVER]);
  strand(['ps']);
  const web = (JSON.parse(strand(['ps', '--format', 'json'], true)) as { name: string; addresses: string[] }[]).find((s) => s.name === 'demo-web')!;
  const webIp = web.addresses[0]!.split('/')[0]!;

  console.log(`\n• a second sandbox on ${NET} asks the first by address (${webIp}):`);
  strand(['run', '--name', 'demo-client', '--network', NET, '--', process.execPath, '-e', CLIENT(`http://${webIp}/`)]);

  console.log(`\n• the host asks the published port 127.0.0.1:${HOST_PORT}:`);
  const res = await fetch(`http://127.0.0.1:${HOST_PORT}/`);
  console.log(`  ${(await res.text()).trim()}`);
} finally {
  console.log('\n• removing everything');
  spawnSync(process.execPath, [BIN, 'rm', '-f', 'demo-web', 'demo-client'], { stdio: 'ignore' });
  spawnSync(process.execPath, [BIN, 'network', 'rm', NET], { stdio: 'ignore' });
  const left = leftovers();
  console.log(left.length ? `LEFT BEHIND: ${left.join(', ')}` : 'nothing left behind: no strand link, namespace or iptables rule remains');
  if (left.length) process.exitCode = 1;
}
