// A sandbox's own /etc/hosts, /etc/resolv.conf and /etc/hostname, kept under
// the run directory and bind-mounted over /etc inside the sandbox.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxRecord } from './types.js';

export function sandboxDir(runDir: string, sandboxId: string): string {
  return join(runDir, 'sandboxes', sandboxId);
}

/** The host's resolvers, minus loopback ones a sandbox cannot reach (as Docker filters them). */
function hostResolvConf(): { servers: string[]; search: string[]; options: string[] } {
  let text = '';
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // no resolv.conf on the host: the sandbox gets none either
  }
  const servers: string[] = [];
  const search: string[] = [];
  const options: string[] = [];
  for (const line of text.split('\n')) {
    const [word, ...rest] = line.trim().split(/\s+/);
    if (word === 'nameserver' && rest[0] && !/^(127\.|::1$)/.test(rest[0])) servers.push(rest[0]);
    else if (word === 'search' || word === 'domain') search.push(...rest);
    else if (word === 'options') options.push(...rest);
  }
  return { servers, search, options };
}

export function renderResolvConf(sb: SandboxRecord): string {
  const host = hostResolvConf();
  const servers = sb.dns.servers.length ? sb.dns.servers : host.servers;
  const search = sb.dns.search.length ? sb.dns.search : host.search;
  const options = sb.dns.options.length ? sb.dns.options : host.options;
  return (
    servers.map((s) => `nameserver ${s}\n`).join('') +
    (search.length ? `search ${search.join(' ')}\n` : '') +
    (options.length ? `options ${options.join(' ')}\n` : '')
  );
}

export function renderHosts(sb: SandboxRecord, addresses: string[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet', 'ff00::0\tip6-mcastprefix', 'ff02::1\tip6-allnodes', 'ff02::2\tip6-allrouters'];
  for (const h of sb.extraHosts) lines.push(`${h.ip}\t${h.name}`);
  for (const a of addresses) lines.push(`${a.split('/')[0]}\t${sb.hostname}`);
  return lines.join('\n') + '\n';
}

/** Writes the three files; returns their paths for bind-mounting. */
export function writeSandboxFiles(runDir: string, sb: SandboxRecord, addresses: string[]): { hosts: string; resolv: string; hostname: string } {
  const dir = sandboxDir(runDir, sb.id);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const paths = { hosts: join(dir, 'hosts'), resolv: join(dir, 'resolv.conf'), hostname: join(dir, 'hostname') };
  // Rewritten in place (not replaced) so bind mounts of them see the change.
  writeFileSync(paths.hosts, renderHosts(sb, addresses));
  writeFileSync(paths.resolv, renderResolvConf(sb));
  writeFileSync(paths.hostname, sb.hostname + '\n');
  return paths;
}

/** Rewrites only /etc/hosts, the one file that follows the sandbox's addresses. */
export function writeSandboxHosts(runDir: string, sb: SandboxRecord, addresses: string[]): void {
  writeFileSync(join(sandboxDir(runDir, sb.id), 'hosts'), renderHosts(sb, addresses));
}

export function removeSandboxFiles(runDir: string, sandboxId: string): void {
  rmSync(sandboxDir(runDir, sandboxId), { recursive: true, force: true });
}
