// A libcni stand-in for tests: runs a conflist through a verb the way libcni
// does (version negotiation, name/cniVersion/runtimeConfig injection,
// prevResult chaining, reverse DEL, the result cache feeding DEL and CHECK,
// GC after DELs of stale cached attachments, STATUS), so plugins can be
// proven under the same calls a runtime makes.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { invokePluginRaw, outcomeError } from '../../plugins/cni/protocol/exec.js';
import { parseResult } from '../../plugins/cni/protocol/result.js';
import { CniError, CNI_CODES, type Attachment, type CniResult } from '../../plugins/cni/protocol/types.js';
import { atLeast, negotiateVersion } from '../../plugins/cni/protocol/version.js';

export interface Conflist {
  cniVersion?: string;
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: Record<string, unknown>[];
}

export interface RunOptions {
  verb: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';
  containerId?: string;
  netns?: string;
  ifName?: string;
  capabilityArgs?: Record<string, unknown>;
  cniArgs?: Record<string, string> | string;
  /** CNI_PATH dirs. */
  path: string[];
  /** Where ADD results are cached (libcni: /var/lib/cni). */
  cacheDir: string;
  /** GC: attachments to keep; undefined omits the key, as cnitool does. */
  validAttachments?: Attachment[];
  /** The runtime's own level (libcni ≥1.2: 1.1.0). */
  maxVersion?: string;
  env?: Record<string, string>;
}

export interface AddOutcome {
  /** The last plugin's result exactly as printed. */
  raw: Record<string, unknown>;
  result: CniResult;
}

interface CacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  config: string;
  cniArgs?: Record<string, string> | string;
  capabilityArgs?: Record<string, unknown>;
  netns?: string;
  result: Record<string, unknown>;
}

function cacheFile(cacheDir: string, net: string, cid: string, ifName: string): string {
  return join(cacheDir, 'results', `${net}-${cid}-${ifName}`);
}

function readCache(file: string): CacheEntry | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CacheEntry;
  } catch {
    return undefined;
  }
}

/** The config one plugin gets: its own keys plus name, cniVersion, runtimeConfig and prevResult. */
function pluginConfig(list: Conflist, version: string, plugin: Record<string, unknown>, opts: RunOptions, prevResult?: Record<string, unknown>): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: version };
  if (opts.verb === 'ADD' || opts.verb === 'DEL' || opts.verb === 'CHECK') {
    const caps = (plugin.capabilities ?? {}) as Record<string, unknown>;
    const rc: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(caps)) {
      if (on === true && opts.capabilityArgs?.[cap] !== undefined) rc[cap] = opts.capabilityArgs[cap];
    }
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
    if (prevResult) conf.prevResult = prevResult;
  }
  return conf;
}

async function call(list: Conflist, version: string, plugin: Record<string, unknown>, opts: RunOptions, extra: { prevResult?: Record<string, unknown>; keys?: Record<string, unknown> } = {}) {
  const config = { ...pluginConfig(list, version, plugin, opts, extra.prevResult), ...extra.keys };
  const type = String(plugin.type);
  const o = await invokePluginRaw({
    type,
    path: opts.path,
    command: opts.verb,
    containerId: opts.containerId ?? '',
    netns: opts.netns ?? '',
    ifName: opts.ifName ?? '',
    args: opts.cniArgs ?? '',
    config,
    ...(opts.env ? { env: opts.env } : {}),
  });
  if (o.exitCode !== 0) {
    const e = outcomeError(type, o);
    throw new CniError(e.code, `plugin ${type} ${opts.verb}: ${e.message}`, e.details);
  }
  return o.stdout;
}

export async function runConflist(list: Conflist, opts: RunOptions & { verb: 'ADD' }): Promise<AddOutcome>;
export async function runConflist(list: Conflist, opts: RunOptions): Promise<AddOutcome | undefined>;
export async function runConflist(list: Conflist, opts: RunOptions): Promise<AddOutcome | undefined> {
  const version = negotiateVersion(list.cniVersion, list.cniVersions, opts.maxVersion ?? '1.1.0');
  const cid = opts.containerId ?? '';
  const ifName = opts.ifName ?? '';
  const file = cacheFile(opts.cacheDir, list.name, cid, ifName);
  switch (opts.verb) {
    case 'ADD': {
      let prev: Record<string, unknown> | undefined;
      for (const plugin of list.plugins) {
        const out = await call(list, version, plugin, opts, prev ? { prevResult: prev } : {});
        prev = JSON.parse(out) as Record<string, unknown>;
      }
      if (!prev) throw new CniError(CNI_CODES.invalidConfig, `conflist ${list.name} has no plugins`);
      const entry: CacheEntry = {
        kind: 'cniCacheV1',
        containerId: cid,
        ifName,
        networkName: list.name,
        config: Buffer.from(JSON.stringify(list)).toString('base64'),
        result: prev,
        netns: opts.netns ?? '',
      };
      if (opts.cniArgs !== undefined) entry.cniArgs = opts.cniArgs;
      if (opts.capabilityArgs !== undefined) entry.capabilityArgs = opts.capabilityArgs;
      mkdirSync(join(opts.cacheDir, 'results'), { recursive: true });
      writeFileSync(file, JSON.stringify(entry));
      return { raw: prev, result: parseResult(prev, { what: 'conflist result' }) };
    }
    case 'DEL': {
      const cached = atLeast(version, '0.4.0') ? readCache(file)?.result : undefined;
      for (const plugin of [...list.plugins].reverse()) await call(list, version, plugin, opts, cached ? { prevResult: cached } : {});
      rmSync(file, { force: true });
      return undefined;
    }
    case 'CHECK': {
      if (!atLeast(version, '0.4.0')) throw new CniError(CNI_CODES.incompatibleVersion, `configuration version "${version}" does not support the CHECK command`);
      if (list.disableCheck) return undefined;
      const cached = readCache(file)?.result;
      if (!cached) throw new CniError(CNI_CODES.internal, `no cached result for ${list.name} ${cid} ${ifName}: CHECK needs a previous ADD`);
      for (const plugin of list.plugins) await call(list, version, plugin, opts, { prevResult: cached });
      return undefined;
    }
    case 'GC': {
      const keep = new Set((opts.validAttachments ?? []).map((a) => `${a.containerId}\u0000${a.ifName}`));
      let names: string[] = [];
      try {
        names = readdirSync(join(opts.cacheDir, 'results'));
      } catch {
        // no cache yet
      }
      for (const name of names) {
        const entry = readCache(join(opts.cacheDir, 'results', name));
        if (!entry || entry.networkName !== list.name || keep.has(`${entry.containerId}\u0000${entry.ifName}`)) continue;
        const del: RunOptions = { ...opts, verb: 'DEL', containerId: entry.containerId, ifName: entry.ifName, netns: entry.netns ?? '' };
        if (entry.cniArgs !== undefined) del.cniArgs = entry.cniArgs;
        if (entry.capabilityArgs !== undefined) del.capabilityArgs = entry.capabilityArgs;
        await runConflist(list, del);
      }
      if (!atLeast(version, '1.1.0') || list.disableGC) return undefined;
      const keys: Record<string, unknown> = {};
      if (opts.validAttachments !== undefined) {
        const att = opts.validAttachments.map((a) => ({ containerID: a.containerId, ifname: a.ifName }));
        keys['cni.dev/valid-attachments'] = att;
        keys['cni.dev/attachments'] = att;
      }
      const gcOpts: RunOptions = { ...opts, containerId: '', netns: '', ifName: '', cniArgs: '' };
      const errors: CniError[] = [];
      for (const plugin of list.plugins) {
        try {
          await call(list, version, plugin, gcOpts, { keys });
        } catch (err) {
          errors.push(err as CniError);
        }
      }
      if (errors.length) throw errors[0];
      return undefined;
    }
    case 'STATUS': {
      if (!atLeast(version, '1.1.0')) return undefined;
      const stOpts: RunOptions = { ...opts, containerId: '', netns: '', ifName: '', cniArgs: '' };
      for (const plugin of list.plugins) await call(list, version, plugin, stOpts);
      return undefined;
    }
  }
}

/** Asserts that p fails with a CniError of this code whose message matches. */
export async function expectCniError(p: Promise<unknown>, code: number, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CniError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}
