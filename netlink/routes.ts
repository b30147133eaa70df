// Routes: add, replace, delete, list, IPv4 and IPv6, with gateway, device,
// on-link, scope, table and metric.
import { StrandError } from '../common/errors.js';
import {
  AF_INET, AF_INET6, AF_UNSPEC, RTMSG_LEN, RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE,
  RTN_UNICAST, RTPROT_BOOT, RTNH_F_ONLINK, RT_TABLE_MAIN, SCOPES, RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE,
  NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
} from './constants.js';
import { AttrWriter, parseAttrs, attrU32 } from './message.js';
import { bytesToIp, ipFamily, ipToBytes, parsePrefix, type Family } from './address-bytes.js';
import type { RtnlSocket } from './socket.js';
import type { LinkRef, Links } from './links.js';
import { KernelError } from './errors.js';

export type Scope = keyof typeof SCOPES;

export interface RouteSpec {
  /** "default" or a CIDR. */
  dst: string;
  gateway?: string;
  dev?: LinkRef;
  /** Treat the gateway as directly reachable on dev even if no subnet says so. */
  onLink?: boolean;
  scope?: Scope;
  table?: number;
  metric?: number;
  /** Preferred source address. */
  src?: string;
  /** Required with dst "default" to say which family it is when there is no gateway. */
  family?: Family;
}

export interface Route {
  family: Family;
  /** "default" or a CIDR. */
  dst: string;
  gateway?: string;
  index?: number;
  scope: Scope | number;
  table: number;
  metric?: number;
  protocol: number;
  type: number;
  onLink: boolean;
  src?: string;
}

const familyCode = (f: Family): number => (f === 4 ? AF_INET : AF_INET6);

export class Routes {
  constructor(
    private readonly sock: RtnlSocket,
    private readonly links: Links,
  ) {}

  add(spec: RouteSpec): void {
    this.write(spec, NLM_F_CREATE | NLM_F_EXCL, 'add');
  }

  replace(spec: RouteSpec): void {
    this.write(spec, NLM_F_CREATE | NLM_F_REPLACE, 'replace');
  }

  /** Removes a route; with missingOk a route already gone is success. */
  delete(spec: RouteSpec, options: { missingOk?: boolean } = {}): void {
    try {
      this.sock.request(RTM_DELROUTE, 0, this.encode(spec, true), { action: 'delete', object: describe(spec) });
    } catch (err) {
      if (options.missingOk && err instanceof KernelError && (err.errnoName === 'ESRCH' || err.errnoName === 'ENOENT')) return;
      throw err;
    }
  }

  list(filter: { family?: Family; table?: number; dev?: LinkRef } = {}): Route[] {
    const msg = Buffer.alloc(RTMSG_LEN);
    msg.writeUInt8(filter.family === undefined ? AF_UNSPEC : familyCode(filter.family), 0);
    const index = filter.dev === undefined ? undefined : this.links.index(filter.dev);
    const table = filter.table ?? RT_TABLE_MAIN;
    const out: Route[] = [];
    for (const { body } of this.sock.dump(RTM_GETROUTE, msg, { action: 'list', object: 'routes' })) {
      const route = decodeRoute(body);
      if (route.table !== table) continue;
      if (filter.family !== undefined && route.family !== filter.family) continue;
      if (index !== undefined && route.index !== index) continue;
      out.push(route);
    }
    return out;
  }

  private write(spec: RouteSpec, flags: number, action: string): void {
    this.sock.request(RTM_NEWROUTE, flags, this.encode(spec, false), { action, object: describe(spec) });
  }

  private encode(spec: RouteSpec, forDelete: boolean): Buffer {
    let family: Family;
    let dstBytes: Buffer | undefined;
    let dstLen = 0;
    if (spec.dst === 'default') {
      family = spec.family ?? (spec.gateway ? ipFamily(spec.gateway) : 4);
    } else {
      const p = parsePrefix(spec.dst);
      family = p.family;
      dstBytes = ipToBytes(p.ip);
      dstLen = p.prefixLen;
    }
    if (spec.gateway && ipFamily(spec.gateway) !== family) {
      throw new StrandError('invalid', `route to ${spec.dst}: gateway ${spec.gateway} is not of the same IP family`);
    }
    if (!spec.gateway && spec.dev === undefined && !forDelete) {
      throw new StrandError('invalid', `route to ${spec.dst}: give a gateway, a device or both`);
    }
    const table = spec.table ?? RT_TABLE_MAIN;
    // As `ip route`: a route with no gateway is link-scoped, one through a gateway global.
    const scope = spec.scope ?? (spec.gateway || forDelete ? 'universe' : 'link');
    if (!(scope in SCOPES)) throw new StrandError('invalid', `route to ${spec.dst}: unknown scope "${scope}"`);
    const msg = Buffer.alloc(RTMSG_LEN);
    msg.writeUInt8(familyCode(family), 0);
    msg.writeUInt8(dstLen, 1);
    msg.writeUInt8(table < 256 ? table : 0, 4);
    msg.writeUInt8(forDelete ? 0 : RTPROT_BOOT, 5);
    msg.writeUInt8(forDelete ? SCOPES.nowhere : SCOPES[scope], 6);
    msg.writeUInt8(forDelete ? 0 : RTN_UNICAST, 7);
    msg.writeUInt32LE(spec.onLink ? RTNH_F_ONLINK : 0, 8);
    const w = new AttrWriter();
    if (dstBytes) w.bytes(RTA_DST, dstBytes);
    if (spec.gateway) w.bytes(RTA_GATEWAY, ipToBytes(spec.gateway));
    if (spec.dev !== undefined) w.u32(RTA_OIF, this.links.index(spec.dev));
    if (spec.metric !== undefined) w.u32(RTA_PRIORITY, spec.metric);
    if (spec.src) w.bytes(RTA_PREFSRC, ipToBytes(spec.src));
    if (table >= 256) w.u32(RTA_TABLE, table);
    return Buffer.concat([msg, w.toBuffer()]);
  }
}

function describe(spec: RouteSpec): string {
  let text = `route to ${spec.dst}`;
  if (spec.gateway) text += ` via ${spec.gateway}`;
  if (spec.dev !== undefined) text += typeof spec.dev === 'number' ? ` dev #${spec.dev}` : ` dev "${spec.dev}"`;
  return text;
}

function decodeRoute(body: Buffer): Route {
  const family: Family = body.readUInt8(0) === AF_INET ? 4 : 6;
  const dstLen = body.readUInt8(1);
  const attrs = parseAttrs(body, RTMSG_LEN);
  const dst = attrs.get(RTA_DST);
  const scopeNum = body.readUInt8(6);
  const scopeName = (Object.keys(SCOPES) as Scope[]).find((k) => SCOPES[k] === scopeNum);
  const route: Route = {
    family,
    dst: dst ? `${bytesToIp(dst)}/${dstLen}` : dstLen === 0 ? 'default' : `?/${dstLen}`,
    scope: scopeName ?? scopeNum,
    table: attrU32(attrs, RTA_TABLE) ?? body.readUInt8(4),
    protocol: body.readUInt8(5),
    type: body.readUInt8(7),
    onLink: (body.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
  };
  const gw = attrs.get(RTA_GATEWAY);
  if (gw) route.gateway = bytesToIp(gw);
  const oif = attrU32(attrs, RTA_OIF);
  if (oif !== undefined) route.index = oif;
  const metric = attrU32(attrs, RTA_PRIORITY);
  if (metric !== undefined) route.metric = metric;
  const src = attrs.get(RTA_PREFSRC);
  if (src) route.src = bytesToIp(src);
  return route;
}
