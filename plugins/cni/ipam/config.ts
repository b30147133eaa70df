// strand-ipam's configuration: CNI host-local's fields (ranges, the legacy
// top-level subnet, routes, dataDir, resolvConf, requested IPs) plus strand's
// `store`. Everything is checked here, before the store is touched, so a bad
// config fails with code 7 naming the field and writes nothing.
import { isAbsolute } from 'node:path';
import { type Cidr, type Ip, bits, formatCidr, formatIp, lastOf, parseCidr, parseIp } from '../../../ipam/cidr.js';
import { parseStoreUrl } from '../../../store/url.js';
import { DEFAULT_STORE_URL } from '../../../store/url.js';
import { getCi } from '../protocol/args.js';
import { isObject } from '../protocol/config.js';
import { parseResolvConf, readResolvConf } from './resolv.js';
import { CniError, CNI_CODES, type CniDns, type CniRequest, type CniRoute } from '../protocol/types.js';

export interface RangeConf {
  /** Where it came from, for messages: "ipam.ranges[0][1]". */
  where: string;
  subnet: Cidr;
  first: bigint;
  last: bigint;
  gateway: bigint;
  /** Identifies the range among a network's pools (subnet, bounds, gateway). */
  key: string;
}

export interface StoreChoice {
  url: string;
  /** Pools go in the global space on a shared (etcd, Redis) store, else in this host's local space. */
  space: 'local' | 'global';
}

export interface IpamConf {
  network: string;
  store: StoreChoice;
  /** Range sets: one address from each. */
  sets: RangeConf[][];
  routes: CniRoute[];
  dns?: CniDns;
  /** Requested addresses (CNI_ARGS IP, args.cni.ips, runtimeConfig.ips), at most one per set. */
  requested: Ip[];
}

function invalid(msg: string): CniError {
  return new CniError(CNI_CODES.invalidConfig, msg);
}

const fmt = (family: 4 | 6, v: bigint) => formatIp({ family, value: v });

function str(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw invalid(`${where}.${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function ipIn(s: string, where: string, subnet: Cidr): bigint {
  let ip: Ip;
  try {
    ip = parseIp(s, `${where}`);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (ip.family !== subnet.family || ip.value < subnet.base || ip.value > lastOf(subnet)) {
    throw invalid(`${where} ${s} is not in subnet ${formatCidr(subnet)}`);
  }
  return ip.value;
}

/** One range, defaults as host-local: gateway network+1; start network+1; end broadcast-1 (IPv4) or the last address (IPv6). */
export function parseRange(raw: unknown, where: string): RangeConf {
  if (!isObject(raw)) throw invalid(`${where} must be an object with "subnet"`);
  const subnetText = str(raw, 'subnet', where);
  if (subnetText === undefined) throw invalid(`${where}.subnet is missing`);
  let subnet: Cidr;
  try {
    subnet = parseCidr(subnetText, { what: `${where}.subnet` });
  } catch (err) {
    throw invalid((err as Error).message);
  }
  const fam = subnet.family;
  if (bits(fam) - subnet.prefix < 2) throw invalid(`${where}.subnet: network ${subnetText} too small to allocate from; it needs at least 2 host bits`);
  const broadcast = lastOf(subnet);
  const usableLast = fam === 4 ? broadcast - 1n : broadcast;
  const inner = (v: bigint, key: string, text: string) => {
    if (v === subnet.base || (fam === 4 && v === broadcast)) throw invalid(`${where}.${key} ${text} is the ${v === subnet.base ? 'network' : 'broadcast'} address of ${subnetText}`);
    return v;
  };
  const startText = str(raw, 'rangeStart', where);
  const endText = str(raw, 'rangeEnd', where);
  const gwText = str(raw, 'gateway', where);
  const first = startText === undefined ? subnet.base + 1n : inner(ipIn(startText, `${where}.rangeStart`, subnet), 'rangeStart', startText);
  const last = endText === undefined ? usableLast : inner(ipIn(endText, `${where}.rangeEnd`, subnet), 'rangeEnd', endText);
  if (first > last) throw invalid(`${where}: rangeStart ${fmt(fam, first)} is after rangeEnd ${fmt(fam, last)}`);
  const gateway = gwText === undefined ? subnet.base + 1n : inner(ipIn(gwText, `${where}.gateway`, subnet), 'gateway', gwText);
  if (first === last && first === gateway) throw invalid(`${where}: the range ${fmt(fam, first)}-${fmt(fam, last)} holds only the gateway; nothing is left to hand out`);
  const key = `${formatCidr(subnet)} ${fmt(fam, first)}-${fmt(fam, last)} gw ${fmt(fam, gateway)}`;
  return { where, subnet, first, last, gateway, key };
}

/** "10.1.0.2-10.1.0.254" for messages. */
export function describeRange(r: RangeConf): string {
  return `${fmt(r.subnet.family, r.first)}-${fmt(r.subnet.family, r.last)}`;
}

function parseSets(ipam: Record<string, unknown>, runtimeRanges: unknown): RangeConf[][] {
  const sets: RangeConf[][] = [];
  const readSets = (list: unknown, where: string) => {
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) throw invalid(`${where} must be a list of range sets (lists of ranges)`);
    list.forEach((set, i) => {
      if (!Array.isArray(set) || set.length === 0) throw invalid(`${where}[${i}] must be a non-empty list of ranges`);
      sets.push(set.map((r, j) => parseRange(r, `${where}[${i}][${j}]`)));
    });
  };
  // Runtime ranges first, then the legacy top-level range, then ranges (host-local's order).
  readSets(runtimeRanges, 'runtimeConfig.ipRanges');
  if (ipam.subnet !== undefined) sets.push([parseRange(ipam, 'ipam')]);
  readSets(ipam.ranges, 'ipam.ranges');
  if (sets.length === 0) throw invalid('ipam needs "ranges" (or a top-level "subnet"): no range to allocate from');

  const all = sets.flat();
  sets.forEach((set, i) => {
    const fam = set[0]!.subnet.family;
    const other = set.find((r) => r.subnet.family !== fam);
    if (other) throw invalid(`range set ${i} mixes address families: ${set[0]!.where} is IPv${fam}, ${other.where} is IPv${other.subnet.family}; use one set per family`);
  });
  for (let a = 0; a < all.length; a++) {
    for (let b = a + 1; b < all.length; b++) {
      const x = all[a]!;
      const y = all[b]!;
      if (x.subnet.family !== y.subnet.family) continue;
      if (x.first <= y.last && y.first <= x.last) throw invalid(`${x.where} (${describeRange(x)}) overlaps ${y.where} (${describeRange(y)})`);
      // A strand pool owns its whole subnet, so two ranges cannot share one.
      if (x.subnet.base === y.subnet.base && x.subnet.prefix === y.subnet.prefix) {
        throw invalid(`${x.where} and ${y.where} share subnet ${formatCidr(x.subnet)}; strand-ipam takes one range per subnet: merge them into one range`);
      }
      if (x.subnet.base <= lastOf(y.subnet) && y.subnet.base <= lastOf(x.subnet)) {
        throw invalid(`${x.where} subnet ${formatCidr(x.subnet)} overlaps ${y.where} subnet ${formatCidr(y.subnet)}`);
      }
    }
  }
  return sets;
}

function parseRoutes(raw: unknown): CniRoute[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid('ipam.routes must be a list of {dst, gw}');
  return raw.map((r, i) => {
    const where = `ipam.routes[${i}]`;
    if (!isObject(r)) throw invalid(`${where} must be an object {dst, gw}`);
    const dst = str(r, 'dst', where);
    if (dst === undefined) throw invalid(`${where}.dst is missing`);
    try {
      parseCidr(dst, { lenient: true, what: `${where}.dst` });
    } catch (err) {
      throw invalid((err as Error).message);
    }
    const route: CniRoute = { dst };
    const gw = str(r, 'gw', where);
    if (gw !== undefined) {
      try {
        parseIp(gw, `${where}.gw`);
      } catch (err) {
        throw invalid((err as Error).message);
      }
      route.gw = gw;
    }
    return route;
  });
}

/** dataDir → a local store there; store → that URL; neither → $STRAND_STORE or local:///var/lib/strand. */
export function chooseStore(ipam: Record<string, unknown>, env: Record<string, string | undefined> = process.env): StoreChoice {
  const store = str(ipam, 'store', 'ipam');
  const dataDir = str(ipam, 'dataDir', 'ipam');
  if (store !== undefined && dataDir !== undefined) throw invalid('ipam has both "store" and "dataDir": give one (dataDir means the store local://<dataDir>)');
  if (dataDir !== undefined && !isAbsolute(dataDir)) throw invalid(`ipam.dataDir ${JSON.stringify(dataDir)} must be an absolute path`);
  const url = store ?? (dataDir !== undefined ? `local://${dataDir}` : env.STRAND_STORE || DEFAULT_STORE_URL);
  let kind: string;
  try {
    kind = parseStoreUrl(url).kind;
  } catch (err) {
    throw invalid(`ipam: ${(err as Error).message}`);
  }
  return { url, space: kind === 'local' ? 'local' : 'global' };
}

/** Addresses the runtime asks for: CNI_ARGS IP (code 4 when malformed), args.cni.ips, runtimeConfig.ips (7); duplicates dropped. */
export function requestedIps(req: CniRequest): Ip[] {
  const out: Ip[] = [];
  const add = (text: unknown, where: string, code: number) => {
    if (typeof text !== 'string') throw new CniError(code, `${where}: requested IP ${JSON.stringify(text)} must be a string`);
    // host-local accepts "10.1.0.5" and "10.1.0.5/24"; the prefix comes from the range.
    const addr = text.includes('/') ? text.slice(0, text.indexOf('/')) : text;
    try {
      out.push(parseIp(addr, `requested IP (${where})`));
    } catch (err) {
      throw new CniError(code, (err as Error).message);
    }
  };
  const envIp = getCi(req.args, 'IP') as string | undefined;
  if (envIp) for (const s of envIp.split(',')) add(s.trim(), 'CNI_ARGS IP', CNI_CODES.invalidEnv);
  const list = (value: unknown, where: string) => {
    if (value === undefined || value === null) return;
    if (!Array.isArray(value)) throw invalid(`${where} must be a list of IP addresses`);
    value.forEach((s, i) => add(s, `${where}[${i}]`, CNI_CODES.invalidConfig));
  };
  const cni = isObject(req.config.args) ? getCi(req.config.args, 'cni') : undefined;
  list(getCi(cni, 'ips'), 'args.cni.ips');
  list(getCi(req.config.runtimeConfig, 'ips'), 'runtimeConfig.ips');
  const seen = new Set<string>();
  return out.filter((ip) => {
    const k = formatIp(ip);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function ipamSection(req: CniRequest): Record<string, unknown> {
  const ipam = req.config.ipam;
  if (!isObject(ipam)) throw invalid('the config has no "ipam" section');
  return ipam;
}

/** The store and network only: what DEL and GC need, so they work even if the ranges have become invalid. */
export function parseIpamTarget(req: CniRequest): { network: string; store: StoreChoice } {
  return { network: req.config.name, store: chooseStore(ipamSection(req), req.env) };
}

/** The full config, for ADD, CHECK and STATUS. */
export function parseIpamConfig(req: CniRequest, options: { withRequests?: boolean } = {}): IpamConf {
  const ipam = ipamSection(req);
  const conf: IpamConf = {
    network: req.config.name,
    store: chooseStore(ipam, req.env),
    sets: parseSets(ipam, getCi(req.config.runtimeConfig, 'ipRanges')),
    routes: parseRoutes(ipam.routes),
    requested: options.withRequests ? requestedIps(req) : [],
  };
  const resolv = str(ipam, 'resolvConf', 'ipam');
  if (resolv !== undefined) {
    conf.dns = parseResolvConf(readResolvConf(resolv));
  }
  return conf;
}

/** Which set and range each requested IP belongs to; code 7 when one fits no range or two fall in one set. */
export function placeRequests(conf: IpamConf): Map<number, { range: RangeConf; ip: Ip }> {
  const placed = new Map<number, { range: RangeConf; ip: Ip }>();
  for (const ip of conf.requested) {
    let found = false;
    conf.sets.forEach((set, i) => {
      const range = set.find((r) => r.subnet.family === ip.family && ip.value >= r.first && ip.value <= r.last);
      if (!range) return;
      found = true;
      const prior = placed.get(i);
      if (prior) throw invalid(`requested IPs ${formatIp(prior.ip)} and ${formatIp(ip)} are both in range set ${i}; one address per set`);
      if (ip.value === range.gateway) throw invalid(`requested IP ${formatIp(ip)} is the gateway of ${range.where}`);
      placed.set(i, { range, ip });
    });
    if (!found) throw invalid(`requested IP ${formatIp(ip)} is in no range of network ${JSON.stringify(conf.network)}`);
  }
  return placed;
}
