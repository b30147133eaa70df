// Parses store URLs (`--store`, STRAND_STORE) into backend options. Parsing is
// by hand rather than with WHATWG URL because etcd URLs carry a comma-separated
// host list, which URL would reject or mangle.

import { StrandError } from '../common/errors.js';

export const DEFAULT_STORE_URL = 'local:///var/lib/strand';

export interface TlsFiles {
  /** CA bundle to verify the server with; the system roots when absent. */
  ca?: string;
  /** Client certificate and key, for servers that require client auth. */
  cert?: string;
  key?: string;
}

/**
 * Whether an error from a TLS connection attempt is the handshake failing
 * (certificate not trusted, wrong host name, client certificate refused)
 * rather than the server being away: retrying cannot fix those, the URL's
 * ca=, cert= and key= can. Node and grpc report them only as codes and text.
 */
export function isTlsFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/.test(code)) return true;
  const msg = err instanceof Error ? err.message : String(err);
  return /certificate|SSL routines|altnames|handshake/i.test(msg);
}

export interface LocalStoreConfig {
  kind: 'local';
  dir: string;
  /** Log bytes after the snapshot that trigger compaction (tests lower it). */
  compactBytes?: number;
}

export interface HostPort {
  host: string;
  port: number;
}

export interface EtcdStoreConfig {
  kind: 'etcd';
  hosts: HostPort[];
  username?: string;
  password?: string;
  tls?: TlsFiles;
}

/**
 * What the Redis backend demands of the server's persistence before it uses it:
 * 'fsync' (the default) refuses a server that can lose writes it has
 * acknowledged (see redis.ts); 'none' skips the check, for a server whose
 * persistence is vouched for elsewhere or a store that may be lost.
 */
export type RedisDurability = 'fsync' | 'none';

export interface RedisSentinelConfig {
  /** Sentinels to ask for the master (default port 26379). */
  hosts: HostPort[];
  /** The master's name in the sentinels' configuration. */
  masterName: string;
  /** Send the URL's user and password to the sentinels too (sentinelAuth=1). */
  auth: boolean;
}

export interface RedisStoreConfig {
  kind: 'redis';
  /** The server, for redis:// and rediss:// (absent with `sentinel`). */
  host?: string;
  port?: number;
  /** For redis+sentinel://: the master is whichever server the sentinels name. */
  sentinel?: RedisSentinelConfig;
  db: number;
  username?: string;
  password?: string;
  tls?: TlsFiles;
  /** Prefix of every Redis key strand writes, so several stores can share a server. */
  prefix: string;
  durability: RedisDurability;
}

export type StoreConfig = LocalStoreConfig | EtcdStoreConfig | RedisStoreConfig;

function invalid(url: string, problem: string): StrandError {
  return new StrandError('invalid', `store URL "${redactUrl(url)}": ${problem}`);
}

/**
 * The URL with its whole user info (user name and password) replaced by
 * `***`, safe for logs and error messages. Everything up to the last "@" goes,
 * not just what a parser would call the user info: a password with a raw "/",
 * "?" or "#" ends the authority early for a parser, and its tail would
 * otherwise survive. An "@" in an option value costs the host part of the
 * message, never a secret.
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return url.includes('@') ? '***' : url;
  const at = m[2]!.lastIndexOf('@');
  return at < 0 ? url : `${m[1]}***${m[2]!.slice(at)}`;
}

function decode(url: string, part: string, what: string, secret = false): string {
  try {
    return decodeURIComponent(part);
  } catch {
    // Never echo a password, not even a malformed one.
    const shown = secret ? '' : ` "${part}"`;
    throw invalid(url, `${what}${shown} is not valid percent-encoding (write "%" as %25)`);
  }
}

function parseHostPort(url: string, text: string, defaultPort: number): HostPort {
  // Bracketed IPv6 literal, or a name/IPv4 with an optional port.
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::([0-9]*))?$/.exec(text);
  if (!m) throw invalid(url, `host "${text}" is not host:port`);
  const host = m[1] ?? m[2]!;
  if (m[3] === undefined) return { host, port: defaultPort };
  const port = Number(m[3]);
  if (m[3] === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(url, `port "${m[3]}" of host "${host}" must be a number from 1 to 65535`);
  }
  return { host, port };
}

function parseQuery(url: string, query: string, allowed: readonly string[]): Map<string, string> {
  const params = new Map<string, string>();
  if (query === '') return params;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decode(url, eq < 0 ? pair : pair.slice(0, eq), 'option name');
    const value = eq < 0 ? '' : decode(url, pair.slice(eq + 1), `option ${name}`);
    if (!allowed.includes(name)) {
      throw invalid(url, `unknown option "${name}" (allowed: ${allowed.join(', ') || 'none'})`);
    }
    if (params.has(name)) throw invalid(url, `option "${name}" is given twice`);
    params.set(name, value);
  }
  return params;
}

function parseBool(url: string, name: string, value: string): boolean {
  if (value === '1' || value === 'true' || value === '') return true;
  if (value === '0' || value === 'false') return false;
  throw invalid(url, `option "${name}=${value}" must be 1, 0, true or false`);
}

function parseTls(url: string, params: Map<string, string>, impliedTls: boolean): TlsFiles | undefined {
  const tlsParam = params.get('tls');
  const on = tlsParam === undefined ? impliedTls : parseBool(url, 'tls', tlsParam);
  const files: TlsFiles = {};
  for (const name of ['ca', 'cert', 'key'] as const) {
    const value = params.get(name);
    if (value === undefined) continue;
    if (value === '') throw invalid(url, `option "${name}" needs a file path`);
    files[name] = value;
  }
  if (!on) {
    if (files.ca || files.cert || files.key) throw invalid(url, 'options ca, cert and key need tls=1');
    return undefined;
  }
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw invalid(url, 'options cert and key must be given together');
  }
  return files;
}

function parseDb(url: string, text: string): number {
  if (text === '') return 0;
  if (!/^[0-9]+$/.test(text) || Number(text) > 65535) throw invalid(url, `database "${text}" must be a number`);
  return Number(text);
}

function parseDurability(url: string, params: Map<string, string>): RedisDurability {
  const value = params.get('durability') ?? 'fsync';
  if (value !== 'fsync' && value !== 'none') throw invalid(url, `option "durability=${value}" must be fsync (the default) or none`);
  return value;
}

function splitUserinfo(url: string, authority: string): { userinfo?: string; hosts: string } {
  const at = authority.lastIndexOf('@');
  if (at < 0) return { hosts: authority };
  return { userinfo: authority.slice(0, at), hosts: authority.slice(at + 1) };
}

function parseCredentials(url: string, userinfo: string | undefined): { username?: string; password?: string } {
  if (userinfo === undefined) return {};
  const colon = userinfo.indexOf(':');
  const username = decode(url, colon < 0 ? userinfo : userinfo.slice(0, colon), 'user name', true);
  const password = colon < 0 ? undefined : decode(url, userinfo.slice(colon + 1), 'password', true);
  return {
    ...(username !== '' ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

/** Parses a store URL; the default (local:///var/lib/strand) when none is given. */
export function parseStoreUrl(url: string = DEFAULT_STORE_URL): StoreConfig {
  if (url.includes('#')) {
    throw invalid(url, '"#" is not allowed in a store URL; percent-encode it as %23 (in a password too)');
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/.exec(url);
  if (!m) {
    throw invalid(url, 'expected local:///DIR, etcd://HOST:PORT[,HOST:PORT], redis://HOST:PORT or redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER');
  }
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  const path = m[3]!;
  const query = m[4] ?? '';
  if (scheme !== 'local' && (path + query).includes('@')) {
    // A password's raw "/" or "?" ends the host part early, leaving its
    // "@" behind; better refused than connecting as someone else.
    throw invalid(url, '"@" after the host part: percent-encode "/", "?" and "#" in the user name and password (%2F, %3F, %23), and "@" in option values (%40)');
  }

  switch (scheme) {
    case 'local': {
      if (authority !== '') throw invalid(url, `local store takes no host ("${authority}"); write local:///DIR`);
      const dir = decode(url, path, 'directory');
      if (!dir.startsWith('/') || dir === '/') throw invalid(url, 'local store needs an absolute directory, e.g. local:///var/lib/strand');
      const params = parseQuery(url, query, ['compactBytes']);
      const config: LocalStoreConfig = { kind: 'local', dir: dir.replace(/\/+$/, '') };
      const compact = params.get('compactBytes');
      if (compact !== undefined) {
        const n = Number(compact);
        if (!/^[0-9]+$/.test(compact) || n < 1024) throw invalid(url, `option "compactBytes=${compact}" must be an integer of at least 1024`);
        config.compactBytes = n;
      }
      return config;
    }
    case 'etcd': {
      const { userinfo, hosts } = splitUserinfo(url, authority);
      if (hosts === '') throw invalid(url, 'etcd store needs at least one host:port');
      if (path !== '' && path !== '/') throw invalid(url, `etcd store takes no path ("${path}")`);
      const params = parseQuery(url, query, ['tls', 'ca', 'cert', 'key']);
      const creds = parseCredentials(url, userinfo);
      if ((creds.username === undefined) !== (creds.password === undefined)) {
        throw invalid(url, 'etcd credentials need both user and password (user:pass@)');
      }
      const tls = parseTls(url, params, false);
      return {
        kind: 'etcd',
        hosts: hosts.split(',').map((h) => parseHostPort(url, h, 2379)),
        ...creds,
        ...(tls ? { tls } : {}),
      };
    }
    case 'redis':
    case 'rediss': {
      const { userinfo, hosts } = splitUserinfo(url, authority);
      if (hosts === '') throw invalid(url, 'redis store needs a host:port');
      if (hosts.includes(',')) throw invalid(url, 'redis store takes one host:port; for several sentinels use redis+sentinel://HOST:PORT,HOST:PORT/MASTER');
      const { host, port } = parseHostPort(url, hosts, 6379);
      const db = parseDb(url, path === '/' ? '' : path.slice(1));
      const params = parseQuery(url, query, ['tls', 'ca', 'cert', 'key', 'prefix', 'durability']);
      const tls = parseTls(url, params, scheme === 'rediss');
      return {
        kind: 'redis',
        host,
        port,
        db,
        ...parseCredentials(url, userinfo),
        ...(tls ? { tls } : {}),
        prefix: params.get('prefix') ?? 'strand:',
        durability: parseDurability(url, params),
      };
    }
    case 'redis+sentinel': {
      const { userinfo, hosts } = splitUserinfo(url, authority);
      if (hosts === '') throw invalid(url, 'redis+sentinel store needs at least one sentinel host:port');
      // /MASTER or /MASTER/DB
      const parts = path.split('/').slice(1);
      if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
      if (parts.length === 0 || parts.length > 2) throw invalid(url, 'redis+sentinel store needs the master\'s name as its path: redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER[/DB]');
      const masterName = decode(url, parts[0]!, 'master name');
      if (!/^[A-Za-z0-9._-]+$/.test(masterName)) throw invalid(url, `master name "${masterName}" may use letters, digits, ".", "_" and "-"`);
      const db = parseDb(url, parts[1] ?? '');
      const params = parseQuery(url, query, ['prefix', 'durability', 'sentinelAuth']);
      const sentinelAuth = params.get('sentinelAuth');
      const creds = parseCredentials(url, userinfo);
      const auth = sentinelAuth === undefined ? false : parseBool(url, 'sentinelAuth', sentinelAuth);
      if (auth && creds.password === undefined) throw invalid(url, 'option sentinelAuth=1 needs a password in the URL ([user]:pass@)');
      return {
        kind: 'redis',
        sentinel: { hosts: hosts.split(',').map((h) => parseHostPort(url, h, 26379)), masterName, auth },
        db,
        ...creds,
        prefix: params.get('prefix') ?? 'strand:',
        durability: parseDurability(url, params),
      };
    }
    case 'rediss+sentinel':
      throw invalid(url, 'TLS to sentinels (rediss+sentinel://) is not supported yet; use redis+sentinel:// on a trusted network, or rediss:// to one server');
    default:
      throw invalid(url, `unknown scheme "${scheme}:" (use local, etcd, redis, rediss or redis+sentinel)`);
  }
}
