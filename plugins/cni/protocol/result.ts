// Results between versions. Inside, strand holds every result in the 1.1
// form; `formatResult` prints exactly the requested version and
// `parseResult` reads a prevResult or another plugin's output from any
// version (0.1.0 to 1.1.0) back into the 1.1 form.
import { parseCidr, parseIp } from '../../../ipam/cidr.js';
import { CniError, CNI_CODES, type CniDns, type CniInterface, type CniIp, type CniResult, type CniRoute } from './types.js';
import { atLeast } from './version.js';

export interface ParseOptions {
  /** Names the input in messages, e.g. "prevResult" or "IPAM plugin host-local output". */
  what?: string;
  /** Code for a malformed result; default 6 (decode). */
  code?: number;
  /** The version to assume when the result names none. */
  version?: string;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

class Reader {
  constructor(
    readonly what: string,
    readonly code: number,
  ) {}
  fail(path: string, why: string): CniError {
    return new CniError(this.code, `invalid ${this.what}: ${path} ${why}`);
  }
  str(o: Json, key: string, path: string, required = false): string | undefined {
    const v = o[key];
    if (v === undefined || (v === '' && !required)) {
      if (required) throw this.fail(`${path}.${key}`, 'is missing');
      return undefined;
    }
    if (typeof v !== 'string') throw this.fail(`${path}.${key}`, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }
  int(o: Json, key: string, path: string): number | undefined {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.fail(`${path}.${key}`, `must be an integer, got ${JSON.stringify(v)}`);
    return v;
  }
  strings(o: Json, key: string, path: string): string[] | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw this.fail(`${path}.${key}`, 'must be a list of strings');
    return [...(v as string[])];
  }
  list(o: Json, key: string, path: string): Json[] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.fail(`${path}.${key}`, 'must be a list');
    return v.map((e, i) => {
      if (!isObj(e)) throw this.fail(`${path}.${key}[${i}]`, 'must be an object');
      return e;
    });
  }
  cidr(s: string, path: string): void {
    try {
      parseCidr(s, { lenient: true });
    } catch (err) {
      throw this.fail(path, (err as Error).message);
    }
  }
  ip(s: string, path: string): void {
    try {
      parseIp(s);
    } catch (err) {
      throw this.fail(path, (err as Error).message);
    }
  }
}

function readRoute(r: Reader, o: Json, path: string): CniRoute {
  const dst = r.str(o, 'dst', path, true)!;
  r.cidr(dst, `${path}.dst`);
  const route: CniRoute = { dst };
  const gw = r.str(o, 'gw', path);
  if (gw !== undefined) {
    r.ip(gw, `${path}.gw`);
    route.gw = gw;
  }
  for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
    const n = r.int(o, k, path);
    if (n !== undefined) route[k] = n;
  }
  return route;
}

function readDns(r: Reader, o: unknown, path: string): CniDns | undefined {
  if (o === undefined || o === null) return undefined;
  if (!isObj(o)) throw r.fail(path, 'must be an object');
  const dns: CniDns = {};
  const nameservers = r.strings(o, 'nameservers', path);
  const domain = r.str(o, 'domain', path);
  const search = r.strings(o, 'search', path);
  const options = r.strings(o, 'options', path);
  if (nameservers) dns.nameservers = nameservers;
  if (domain !== undefined) dns.domain = domain;
  if (search) dns.search = search;
  if (options) dns.options = options;
  return dns;
}

// 0.1.0/0.2.0: {ip4: {ip, gateway, routes}, ip6: {...}, dns}.
function readLegacy(r: Reader, raw: Json, result: CniResult): void {
  const ips: CniIp[] = [];
  const routes: CniRoute[] = [];
  for (const fam of ['ip4', 'ip6'] as const) {
    const block = raw[fam];
    if (block === undefined || block === null) continue;
    if (!isObj(block)) throw r.fail(fam, 'must be an object');
    const address = r.str(block, 'ip', fam, true)!;
    r.cidr(address, `${fam}.ip`);
    const ip: CniIp = { address };
    const gateway = r.str(block, 'gateway', fam);
    if (gateway !== undefined) {
      r.ip(gateway, `${fam}.gateway`);
      ip.gateway = gateway;
    }
    ips.push(ip);
    r.list(block, 'routes', fam).forEach((o, i) => routes.push(readRoute(r, o, `${fam}.routes[${i}]`)));
  }
  if (ips.length) result.ips = ips;
  if (routes.length) result.routes = routes;
}

/** Reads a result of any version into the 1.1 form; cniVersion stays the one it was written in. */
export function parseResult(raw: unknown, options: ParseOptions = {}): CniResult {
  const r = new Reader(options.what ?? 'result', options.code ?? CNI_CODES.decode);
  if (!isObj(raw)) throw r.fail('the result', 'must be a JSON object');
  const version = r.str(raw, 'cniVersion', 'result') ?? options.version ?? '0.1.0';
  const result: CniResult = { cniVersion: version };
  if (!atLeast(version, '0.3.0')) {
    readLegacy(r, raw, result);
  } else {
    const interfaces = r.list(raw, 'interfaces', 'result').map((o, i): CniInterface => {
      const path = `interfaces[${i}]`;
      const itf: CniInterface = { name: r.str(o, 'name', path, true)! };
      const mac = r.str(o, 'mac', path);
      // "" marks a host interface explicitly (bandwidth looks for it), so keep it.
      const sandbox = o.sandbox === '' ? '' : r.str(o, 'sandbox', path);
      const mtu = r.int(o, 'mtu', path);
      const socketPath = r.str(o, 'socketPath', path);
      const pciID = r.str(o, 'pciID', path);
      if (mac !== undefined) itf.mac = mac;
      if (sandbox !== undefined) itf.sandbox = sandbox;
      if (mtu !== undefined) itf.mtu = mtu;
      if (socketPath !== undefined) itf.socketPath = socketPath;
      if (pciID !== undefined) itf.pciID = pciID;
      return itf;
    });
    if (raw.interfaces !== undefined && raw.interfaces !== null) result.interfaces = interfaces;
    const ips = r.list(raw, 'ips', 'result').map((o, i): CniIp => {
      const path = `ips[${i}]`;
      const address = r.str(o, 'address', path, true)!;
      r.cidr(address, `${path}.address`);
      const ip: CniIp = { address };
      const gateway = r.str(o, 'gateway', path);
      if (gateway !== undefined) {
        r.ip(gateway, `${path}.gateway`);
        ip.gateway = gateway;
      }
      const idx = r.int(o, 'interface', path);
      if (idx !== undefined) {
        if (idx < 0 || idx >= interfaces.length) throw r.fail(`${path}.interface`, `${idx} does not index one of the ${interfaces.length} interfaces`);
        ip.interface = idx;
      }
      const v = o.version;
      if (v !== undefined && v !== '4' && v !== '6') throw r.fail(`${path}.version`, `must be "4" or "6", got ${JSON.stringify(v)}`);
      return ip;
    });
    if (ips.length) result.ips = ips;
    const routes = r.list(raw, 'routes', 'result').map((o, i) => readRoute(r, o, `routes[${i}]`));
    if (routes.length) result.routes = routes;
  }
  const dns = readDns(r, raw.dns, 'dns');
  if (dns) result.dns = dns;
  return result;
}

/** The result as `version` prints it: cniVersion set, 1.1-only fields dropped below 1.1.0, ips[].version added below 1.0.0. */
export function formatResult(result: CniResult, version: string): Record<string, unknown> {
  const v11 = atLeast(version, '1.1.0');
  const v10 = atLeast(version, '1.0.0');
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces) {
    out.interfaces = result.interfaces.map((i) => {
      const o: Record<string, unknown> = { name: i.name };
      if (i.mac !== undefined) o.mac = i.mac;
      if (i.sandbox !== undefined) o.sandbox = i.sandbox;
      if (v11) {
        if (i.mtu !== undefined) o.mtu = i.mtu;
        if (i.socketPath !== undefined) o.socketPath = i.socketPath;
        if (i.pciID !== undefined) o.pciID = i.pciID;
      }
      return o;
    });
  }
  if (result.ips) {
    out.ips = result.ips.map((ip) => {
      const o: Record<string, unknown> = {};
      if (!v10) o.version = ip.address.includes(':') ? '6' : '4';
      if (ip.interface !== undefined) o.interface = ip.interface;
      o.address = ip.address;
      if (ip.gateway !== undefined) o.gateway = ip.gateway;
      return o;
    });
  }
  if (result.routes) {
    out.routes = result.routes.map((r) => {
      const o: Record<string, unknown> = { dst: r.dst };
      if (r.gw !== undefined) o.gw = r.gw;
      if (v11) for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (r[k] !== undefined) o[k] = r[k];
      return o;
    });
  }
  if (result.dns) out.dns = { ...result.dns };
  return out;
}
