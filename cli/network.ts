// `strand network ...`: Docker's network commands over the controller.
import { StrandError } from '../common/errors.js';
import { contains, parseCidr, parseIp } from '../ipam/cidr.js';
import type { Controller, SubnetRequest } from '../core/controller.js';
import type { NetworkRecord } from '../core/types.js';
import { shortId } from '../core/ids.js';
import { engineMembers } from '../cluster/engines.js';
import { flag, keyValues, list, optionValues, parse, str, table } from './args.js';

const USAGE = `usage: strand network COMMAND
  create [--driver bridge|macvlan|overlay|host|none] [--subnet CIDR]... [--gateway IP]... [--ip-range CIDR]...
         [--aux-address name=IP]... [--ipv6] [--internal] [--opt k=v]... [--label k=v]... NAME
  ls [--format json] [-q]
  inspect NAME...
  rm NAME...
  connect [--ip IP] [--ip6 IP] NAME SANDBOX
  disconnect NAME SANDBOX
  prune
`;

/** Docker's rule: each --gateway, --ip-range and --aux-address belongs to the --subnet that contains it. */
export function subnetRequests(subnets: string[], gateways: string[], ranges: string[], aux: Record<string, string>): SubnetRequest[] {
  const reqs: SubnetRequest[] = subnets.map((subnet) => ({ subnet }));
  const parsed = subnets.map((s) => parseCidr(s, { what: 'subnet' }));
  const owner = (ip: string, what: string): SubnetRequest => {
    const addr = parseIp(ip, what);
    const i = parsed.findIndex((c) => contains(c, addr));
    if (i < 0) throw new StrandError('invalid', `no --subnet contains ${what} ${ip}`);
    return reqs[i]!;
  };
  for (const gw of gateways) {
    const r = owner(gw, 'gateway');
    if (r.gateway) throw new StrandError('invalid', `subnet ${r.subnet} has two gateways: ${r.gateway} and ${gw}`);
    r.gateway = gw;
  }
  for (const range of ranges) {
    const r = owner(range.split('/')[0]!, 'ip range');
    if (r.ipRange) throw new StrandError('invalid', `subnet ${r.subnet} has two ip ranges: ${r.ipRange} and ${range}`);
    r.ipRange = range;
  }
  for (const [name, ip] of Object.entries(aux)) {
    const r = owner(ip, `auxiliary address "${name}"`);
    r.auxAddresses = { ...(r.auxAddresses ?? {}), [name]: ip };
  }
  return reqs;
}

function describe(n: NetworkRecord, endpoints: { id: string; sandbox: string; ifName: string; mac: string; addresses: string[] }[]) {
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: n.scope,
    Driver: n.driver,
    EnableIPv6: n.ipv6,
    IPAM: { Driver: 'strand', Config: n.subnets.map((s) => ({ Subnet: s.subnet, Gateway: s.gateway, ...(s.ipRange ? { IPRange: s.ipRange } : {}), ...(Object.keys(s.auxAddresses).length ? { AuxiliaryAddresses: s.auxAddresses } : {}) })) },
    Internal: n.internal,
    Options: n.options,
    Labels: n.labels,
    Driver_State: n.driverState,
    Endpoints: Object.fromEntries(endpoints.map((e) => [e.id, { Sandbox: e.sandbox, Interface: e.ifName, MacAddress: e.mac, Addresses: e.addresses }])),
  };
}

export async function networkCommand(ctl: () => Promise<Controller>, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create': {
      const p = parse(rest, {
        driver: { type: 'string', short: 'd' }, subnet: { type: 'string', multiple: true }, gateway: { type: 'string', multiple: true },
        'ip-range': { type: 'string', multiple: true }, 'aux-address': { type: 'string', multiple: true }, ipv6: { type: 'boolean' },
        internal: { type: 'boolean' }, opt: { type: 'string', short: 'o', multiple: true }, label: { type: 'string', multiple: true },
      }, USAGE);
      if (p.positionals.length !== 1) throw new StrandError('invalid', `network create takes exactly one NAME\n${USAGE}`);
      const subnets = subnetRequests(list(p, 'subnet'), list(p, 'gateway'), list(p, 'ip-range'), keyValues(list(p, 'aux-address'), 'auxiliary address'));
      if (!subnets.length && (list(p, 'gateway').length || list(p, 'ip-range').length)) throw new StrandError('invalid', '--gateway and --ip-range need a --subnet');
      const c = await ctl();
      const net = await c.createNetwork({
        name: p.positionals[0]!, driver: str(p, 'driver') ?? 'bridge', subnets, ipv6: flag(p, 'ipv6'), internal: flag(p, 'internal'),
        options: optionValues(list(p, 'opt')), labels: keyValues(list(p, 'label'), 'label'),
      });
      console.log(net.id);
      return;
    }
    case 'ls':
    case 'list': {
      const p = parse(rest, { format: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } }, USAGE);
      const nets = await (await ctl()).listNetworks();
      if (flag(p, 'quiet')) return void process.stdout.write(nets.map((n) => shortId(n.id) + '\n').join(''));
      if (str(p, 'format') === 'json') return void console.log(JSON.stringify(nets.map((n) => ({ ID: shortId(n.id), Name: n.name, Driver: n.driver, Scope: n.scope, Subnets: n.subnets.map((s) => s.subnet), Internal: n.internal }))));
      if (str(p, 'format') !== undefined) throw new StrandError('invalid', `unknown --format "${str(p, 'format')}": use json`);
      process.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNETS'], nets.map((n) => [shortId(n.id), n.name, n.driver, n.scope, n.subnets.map((s) => s.subnet).join(',')])));
      return;
    }
    case 'inspect': {
      const p = parse(rest, { format: { type: 'string' } }, USAGE);
      if (!p.positionals.length) throw new StrandError('invalid', `network inspect needs at least one NAME\n${USAGE}`);
      const c = await ctl();
      const out = [];
      for (const ref of p.positionals) {
        const n = await c.findNetwork(ref);
        const eps = await Promise.all((await c.endpointsOf(n)).map(async (e) => ({ id: e.id, sandbox: (await c.sandboxById(e.sandboxId))?.name ?? e.sandboxId, ifName: e.ifName, mac: e.mac, addresses: e.addresses })));
        out.push(describe(n, eps));
      }
      console.log(JSON.stringify(out, null, 2));
      return;
    }
    case 'rm':
    case 'remove': {
      const p = parse(rest, {}, USAGE);
      if (!p.positionals.length) throw new StrandError('invalid', `network rm needs at least one NAME\n${USAGE}`);
      const c = await ctl();
      for (const ref of p.positionals) {
        const net = await c.findNetwork(ref);
        // A cluster network Docker engines made is theirs to remove; taking it from under them breaks their next run.
        const engines = net.scope === 'global' ? await engineMembers(c.store, net.id) : [];
        if (engines.length) throw new StrandError('in-use', `network "${net.name}" is used by the Docker engines of host(s) ${engines.join(', ')}: remove it there with "docker network rm" (the last one removes it everywhere)`);
        await c.deleteNetwork(ref);
        console.log(ref);
      }
      return;
    }
    case 'connect': {
      const p = parse(rest, { ip: { type: 'string' }, ip6: { type: 'string' } }, USAGE);
      if (p.positionals.length !== 2) throw new StrandError('invalid', `network connect takes NAME and SANDBOX\n${USAGE}`);
      const addresses = [str(p, 'ip'), str(p, 'ip6')].filter((a): a is string => !!a);
      await (await ctl()).connect(p.positionals[0]!, p.positionals[1]!, { addresses });
      return;
    }
    case 'disconnect': {
      const p = parse(rest, {}, USAGE);
      if (p.positionals.length !== 2) throw new StrandError('invalid', `network disconnect takes NAME and SANDBOX\n${USAGE}`);
      await (await ctl()).disconnect(p.positionals[0]!, p.positionals[1]!);
      return;
    }
    case 'prune': {
      parse(rest, { force: { type: 'boolean', short: 'f' } }, USAGE);
      const removed = await (await ctl()).pruneNetworks();
      if (removed.length) console.log(`Deleted Networks:\n${removed.join('\n')}`);
      return;
    }
    default:
      throw new StrandError('invalid', `unknown network command "${sub ?? ''}"\n${USAGE}`);
  }
}
