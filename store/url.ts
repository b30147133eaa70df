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

export interface RedisStoreConfig {
  kind: 'redis';
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: TlsFiles;
  /** Prefix of every Redis key strand writes, so several stores can share a server. */
  prefix: string;
}

export type StoreConfig = LocalStoreConfig | EtcdStoreConfig | RedisStoreConfig;

function invalid(url: string, problem: string): StrandError {
  return new StrandError('invalid', `store URL "${redactUrl(url)}": ${problem}`);
}

/** The URL with any password replaced, safe for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/?]*)@/i, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:***@`;
  });
}

function decode(url: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalid(url, `${what} "${part}" is not valid percent-encoding`);
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

function splitUserinfo(url: string, authority: string): { userinfo?: string; hosts: string } {
  const at = authority.lastIndexOf('@');
  if (at < 0) return { hosts: authority };
  return { userinfo: authority.slice(0, at), hosts: authority.slice(at + 1) };
}

function parseCredentials(url: string, userinfo: string | undefined): { username?: string; password?: string } {
  if (userinfo === undefined) return {};
  const colon = userinfo.indexOf(':');
  const username = decode(url, colon < 0 ? userinfo : userinfo.slice(0, colon), 'user name');
  const password = colon < 0 ? undefined : decode(url, userinfo.slice(colon + 1), 'password');
  return {
    ...(username !== '' ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

/** Parses a store URL; the default (local:///var/lib/strand) when none is given. */
export function parseStoreUrl(url: string = DEFAULT_STORE_URL): StoreConfig {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/.exec(url);
  if (!m) {
    throw invalid(url, 'expected local:///DIR, etcd://HOST:PORT[,HOST:PORT] or redis://HOST:PORT');
  }
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  const path = m[3]!;
  const query = m[4] ?? '';

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
      if (hosts.includes(',')) throw invalid(url, 'redis store takes one host:port');
      const { host, port } = parseHostPort(url, hosts, 6379);
      let db = 0;
      if (path !== '' && path !== '/') {
        const dbText = path.slice(1);
        if (!/^[0-9]+$/.test(dbText) || Number(dbText) > 65535) throw invalid(url, `database "${dbText}" must be a number`);
        db = Number(dbText);
      }
      const params = parseQuery(url, query, ['tls', 'ca', 'cert', 'key', 'prefix']);
      const tls = parseTls(url, params, scheme === 'rediss');
      const prefix = params.get('prefix') ?? 'strand:';
      return {
        kind: 'redis',
        host,
        port,
        db,
        ...parseCredentials(url, userinfo),
        ...(tls ? { tls } : {}),
        prefix,
      };
    }
    default:
      throw invalid(url, `unknown scheme "${scheme}:" (use local, etcd, redis or rediss)`);
  }
}
