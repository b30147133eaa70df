// Which iptables backend a namespace uses, decided as the Kubernetes
// iptables-wrapper scripts do: whichever of legacy and nft already holds more
// rules (IPv4 and IPv6 together), nft when neither holds any. Rules made by
// one backend are invisible to the other, so guessing wrong would leave a
// host with two firewalls that ignore each other.
import { fstatSync, statSync } from 'node:fs';
import { StrandError } from '../common/errors.js';
import type { NetNs } from '../netlink/index.js';
import { runTool } from './exec.js';

export type Backend = 'legacy' | 'nft';
export type Family = 4 | 6;
export const BACKENDS: readonly Backend[] = ['legacy', 'nft'];

/** The binary for a tool ('save' or 'restore') of a backend and family. */
export function toolName(backend: Backend, family: Family, tool: 'save' | 'restore'): string {
  return `${family === 4 ? 'iptables' : 'ip6tables'}-${backend}-${tool}`;
}

/** STRAND_IPTABLES=legacy|nft forces a backend; unset or empty means detect. */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): Backend | undefined {
  const v = env.STRAND_IPTABLES?.trim();
  if (!v) return undefined;
  return checkBackend(v, 'STRAND_IPTABLES');
}

export function checkBackend(v: string, where: string): Backend {
  if (v === 'legacy' || v === 'nft') return v;
  throw new StrandError('invalid', `invalid iptables backend "${v}" in ${where}: use "legacy" or "nft"`);
}

/** Counts rule lines ("-A ...") that one backend's save tools print. */
async function ruleCount(ns: NetNs | undefined, backend: Backend): Promise<number> {
  let n = 0;
  for (const family of [4, 6] as const) {
    try {
      const r = await runTool(ns, toolName(backend, family, 'save'), []);
      if (r.status === 0) n += r.stdout.split('\n').filter((l) => l.startsWith('-')).length;
    } catch (err) {
      // A missing binary or family holds no rules; anything else is real.
      if (!(err instanceof StrandError && err.code === 'unavailable')) throw err;
    }
  }
  return n;
}

export async function detectBackend(ns?: NetNs): Promise<Backend> {
  const [legacy, nft] = await Promise.all([ruleCount(ns, 'legacy'), ruleCount(ns, 'nft')]);
  return legacy > nft ? 'legacy' : 'nft';
}

// Keyed by path and inode: inode numbers of deleted namespaces get reused.
const cache = new Map<string, Backend>();

function nsKey(ns?: NetNs): string {
  if (ns) return `${ns.path}#${fstatSync(ns.fd).ino}`;
  return `self#${statSync('/proc/thread-self/ns/net').ino}`;
}

/** The namespace's backend, detected once and remembered. */
export async function cachedBackend(ns?: NetNs): Promise<Backend> {
  const key = nsKey(ns);
  const known = cache.get(key);
  if (known) return known;
  const found = await detectBackend(ns);
  cache.set(key, found);
  return found;
}

/** Forgets what was detected (tests, or after an admin switched backends). */
export function forgetBackends(): void {
  cache.clear();
}
