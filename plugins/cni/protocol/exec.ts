// The runtime side of one call, as libcni makes it: find the plugin named by
// `type` in the CNI_PATH dirs, run it with the CNI_* environment and the
// config on stdin, read its result or error JSON from stdout. Delegating
// plugins use it for IPAM plugins they do not contain; tests use it in place
// of libcni.
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatCniArgs } from './args.js';
import { parseResult } from './result.js';
import { CniError, CNI_CODES, type CniCommand, type CniResult } from './types.js';

export interface Invocation {
  /** The plugin's name (its executable); a "/" is refused. */
  type: string;
  /** The CNI_PATH dirs, searched in order. */
  path: string[];
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifName?: string;
  args?: Record<string, string> | string;
  /** Sent as JSON on stdin. */
  config: unknown;
  /** Extra environment on top of this process's (libcni passes its own through). */
  env?: Record<string, string>;
  /** Kill the plugin after this long; default none. */
  timeoutMs?: number;
}

export interface RawOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The first regular executable file named `type` in `dirs`; code 7 when there is none. */
export function findPlugin(type: string, dirs: readonly string[]): string {
  if (type === '' || type.includes('/')) throw new CniError(CNI_CODES.invalidConfig, `invalid plugin type ${JSON.stringify(type)}: must be a file name without "/"`);
  for (const dir of dirs) {
    const file = join(dir, type);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here: try the next dir
    }
  }
  throw new CniError(CNI_CODES.invalidConfig, `failed to find plugin ${JSON.stringify(type)} in path [${dirs.join(' ')}]`);
}

/** Runs the plugin and returns what it printed and how it exited. */
export function invokePluginRaw(inv: Invocation): Promise<RawOutcome> {
  const file = findPlugin(inv.type, inv.path);
  const version = inv.command === 'VERSION';
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...inv.env,
    CNI_COMMAND: inv.command,
    // libcni exports every variable, with dummy values for VERSION.
    CNI_CONTAINERID: version ? 'dummy' : (inv.containerId ?? ''),
    CNI_NETNS: version ? 'dummy' : (inv.netns ?? ''),
    CNI_IFNAME: version ? 'dummy' : (inv.ifName ?? ''),
    CNI_ARGS: version ? '' : formatCniArgs(inv.args),
    CNI_PATH: inv.path.join(':'),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (inv.timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), inv.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new CniError(CNI_CODES.internal, `cannot run plugin ${file}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ exitCode: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    // A plugin may exit without reading stdin (VERSION); that is not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(inv.config));
  });
}

/** An error the plugin reported, as a CniError with its code; libcni reads stderr only when stdout is empty. */
export function outcomeError(type: string, o: RawOutcome): CniError {
  const text = o.stdout.trim();
  if (text !== '') {
    try {
      const e = JSON.parse(text) as { code?: unknown; msg?: unknown; details?: unknown };
      if (typeof e.code === 'number') {
        return new CniError(e.code, typeof e.msg === 'string' ? e.msg : `plugin ${type} failed`, typeof e.details === 'string' ? e.details : undefined);
      }
    } catch {
      // not an error JSON: report the text
    }
    return new CniError(CNI_CODES.internal, `plugin ${type} failed (exit ${o.exitCode}): ${text}`);
  }
  return new CniError(CNI_CODES.internal, `plugin ${type} failed (exit ${o.exitCode}): ${o.stderr.trim() || 'no output'}`);
}

/**
 * Runs a plugin as libcni does: ADD returns its result in the 1.1 form
 * (from any version it printed), other verbs undefined; a failure is thrown
 * as a CniError carrying the plugin's own code.
 */
export async function invokePlugin(inv: Invocation): Promise<CniResult | undefined> {
  const o = await invokePluginRaw(inv);
  if (o.exitCode !== 0) throw outcomeError(inv.type, o);
  if (inv.command !== 'ADD') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(o.stdout);
  } catch (err) {
    throw new CniError(CNI_CODES.decode, `plugin ${inv.type} printed no valid result: ${(err as Error).message}`);
  }
  return parseResult(raw, { what: `result of plugin ${inv.type}` });
}
