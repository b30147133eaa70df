// The CNI_* environment: which variables each verb needs and what their
// values may be. libcni exports all six on every call, empty when unused, so
// an empty value counts as absent.
import { parseCniArgs } from './args.js';
import { CniError, CNI_CODES, type CniCommand, type CniRequest } from './types.js';

export const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

/** Container ids and network names (libcni's pattern). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** What the CNI_* variables give: the request without its config. */
export type CniEnv = Pick<CniRequest, 'command' | 'containerId' | 'netns' | 'ifName' | 'args' | 'path'>;

type Env = Record<string, string | undefined>;

/**
 * A variable's value, undefined when absent or empty. A NUL byte is refused
 * (code 4): no real environment can carry one (execve ends the string there),
 * but the daemon's socket frame can, and a path or name cut at it by the
 * kernel or libc would name something other than what was checked.
 */
function value(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v !== undefined && v.includes('\0')) {
    throw new CniError(CNI_CODES.invalidEnv, `invalid ${name} ${JSON.stringify(v)}: it holds a NUL byte; send the value without it`);
  }
  return v === undefined || v === '' ? undefined : v;
}

function missing(name: string, command: string): CniError {
  return new CniError(CNI_CODES.invalidEnv, `${name} env variable missing (required for ${command})`);
}

/** Code 3 for an empty id, 4 for one the pattern refuses. */
export function checkContainerId(id: string | undefined): string {
  if (id === undefined || id === '') throw new CniError(CNI_CODES.unknownContainer, 'CNI_CONTAINERID is empty: no container id given');
  if (!ID_PATTERN.test(id)) {
    throw new CniError(CNI_CODES.invalidEnv, `invalid CNI_CONTAINERID ${JSON.stringify(id)}: use letters, digits, "_", "." and "-", starting with a letter or digit`);
  }
  return id;
}

/** 1-15 bytes (IFNAMSIZ), not "." or "..", no "/", ":" or whitespace; code 4. */
export function checkIfName(name: string | undefined): string {
  if (name === undefined || name === '') throw new CniError(CNI_CODES.invalidEnv, 'CNI_IFNAME is empty: no interface name given');
  const bad = (why: string) => new CniError(CNI_CODES.invalidEnv, `invalid CNI_IFNAME ${JSON.stringify(name)}: ${why}`);
  if (Buffer.byteLength(name) > 15) throw bad(`${Buffer.byteLength(name)} bytes; at most 15 fit IFNAMSIZ`);
  if (name === '.' || name === '..') throw bad('"." and ".." are not interface names');
  if (/[/:\s]/.test(name)) throw bad('"/", ":" and whitespace are not allowed');
  if (name.includes('\0')) throw bad('a NUL byte is not allowed');
  return name;
}

/** Network names: the container id pattern; code 7. */
export function checkNetworkName(name: unknown): string {
  if (name === undefined || name === '') throw new CniError(CNI_CODES.invalidConfig, 'missing network name: the config needs "name"');
  if (typeof name !== 'string') throw new CniError(CNI_CODES.invalidConfig, `invalid network name ${JSON.stringify(name)}: must be a string`);
  if (!ID_PATTERN.test(name)) {
    throw new CniError(CNI_CODES.invalidConfig, `invalid network name ${JSON.stringify(name)}: use letters, digits, "_", "." and "-", starting with a letter or digit`);
  }
  return name;
}

/** Reads and checks the variables `command` needs (unneeded ones are ignored, as the spec says). */
export function readEnv(env: Env): CniEnv {
  const raw = value(env, 'CNI_COMMAND');
  if (raw === undefined) throw new CniError(CNI_CODES.invalidEnv, 'CNI_COMMAND env variable missing');
  if (!(COMMANDS as readonly string[]).includes(raw)) {
    throw new CniError(CNI_CODES.invalidEnv, `unknown CNI_COMMAND ${JSON.stringify(raw)}: expected one of ${COMMANDS.join(', ')}`);
  }
  const command = raw as CniCommand;
  const out: CniEnv = { command, containerId: '', netns: '', ifName: '', args: {}, path: [] };
  if (command === 'VERSION') return out;

  const needsAttachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  if (needsAttachment) {
    out.containerId = checkContainerId(value(env, 'CNI_CONTAINERID'));
    const netns = value(env, 'CNI_NETNS');
    // DEL must work after the namespace is gone, so it may come without one.
    if (netns === undefined && command !== 'DEL') throw missing('CNI_NETNS', command);
    out.netns = netns ?? '';
    const ifName = value(env, 'CNI_IFNAME');
    if (ifName === undefined) throw missing('CNI_IFNAME', command);
    out.ifName = checkIfName(ifName);
    out.args = parseCniArgs(value(env, 'CNI_ARGS'));
  }
  const path = value(env, 'CNI_PATH');
  // The reference skel requires CNI_PATH for every verb but VERSION and
  // STATUS; delegating to an IPAM plugin needs it.
  if (path === undefined && command !== 'STATUS') throw missing('CNI_PATH', command);
  out.path = (path ?? '').split(':').filter((d) => d !== '');
  return out;
}
