// The rules strand makes, as data: for each object (the base, a network, an
// endpoint) and IP family, the chains it owns with their rules, and the few
// tagged jump rules it adds to chains it shares. Owning whole chains makes
// removal cheap: delete the jumps, flush and delete the chains.
//
// Layout (same for iptables and ip6tables):
//   filter FORWARD          -> STRAND-FORWARD (inserted first)
//   filter STRAND-FORWARD   -i BR -> STRAND-N-<net>, -o BR -> STRAND-N-<net>  (per network)
//   filter STRAND-N-<net>   the network's whitelist, ends in DROP
//   filter STRAND-ISOLATION -o BR [! DNAT] -j DROP  (per network; entered from a network's chain
//                           for traffic leaving its bridge, so it never reaches another strand
//                           bridge except through a published port)
//   nat PREROUTING/OUTPUT   dst-type LOCAL -> STRAND-DNAT
//   nat STRAND-DNAT         -> STRAND-P-<endpoint>  (per endpoint with published ports)
//   nat STRAND-P-<ep>       DNAT per published port
//   nat POSTROUTING         -> STRAND-POSTROUTING -> STRAND-M-<net> (per network)
//   nat STRAND-M-<net>      outbound MASQUERADE/SNAT, localhost and hairpin MASQUERADE
//   raw OUTPUT              -p udp --dport PORT -j CT --notrack  (overlays: their VXLAN packets
//                           never enter conntrack, so no NAT rule can rewrite them)
import { isIP } from 'node:net';
import type { Family } from './backend.js';
import type { EndpointPorts, NetworkRules, PortMapping } from './types.js';
import {
  BASE, BASE_TAG, endpointNatChain, endpointTag, networkFilterChain, networkNatChain, networkTag,
} from './names.js';

export type Table = 'filter' | 'nat' | 'raw';
export const TABLES: readonly Table[] = ['filter', 'nat', 'raw'];

export interface Rule {
  chain: string;
  args: string[];
  /** Insert at the head of the chain instead of appending. */
  insert?: boolean;
}

export interface TablePlan {
  /** Chains this object owns, created and deleted with it. */
  chains: string[];
  /** Rules inside those chains, in order. */
  rules: Rule[];
  /** Rules in chains the object does not own; each carries the object's tag. */
  jumps: Rule[];
}

export interface ObjectPlan {
  /** The comment on every jump; inventory and cleanup find objects by it. */
  tag: string;
  family: Family;
  tables: Partial<Record<Table, TablePlan>>;
}

const familyOf = (cidrOrIp: string): Family => (isIP(cidrOrIp.split('/')[0]!) === 6 ? 6 : 4);
const tagged = (tag: string, chain: string, args: string[], insert?: boolean): Rule => ({
  chain,
  args: ['-m', 'comment', '--comment', tag, ...args],
  ...(insert ? { insert } : {}),
});

/** strand's top-level chains and the jumps into them from the built-in chains. */
export function basePlan(family: Family): ObjectPlan {
  return {
    tag: BASE_TAG,
    family,
    tables: {
      filter: {
        chains: [BASE.forward, BASE.isolation],
        rules: [],
        jumps: [tagged(BASE_TAG, 'FORWARD', ['-j', BASE.forward], true)],
      },
      nat: {
        chains: [BASE.dnat, BASE.postrouting],
        rules: [],
        jumps: [
          // Published ports: from outside, and from the host itself (loopback included).
          tagged(BASE_TAG, 'PREROUTING', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', BASE.dnat]),
          tagged(BASE_TAG, 'OUTPUT', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', BASE.dnat]),
          tagged(BASE_TAG, 'POSTROUTING', ['-j', BASE.postrouting]),
        ],
      },
    },
  };
}

const ESTABLISHED = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED'];
const DNATED = ['-m', 'conntrack', '--ctstate', 'DNAT'];

/**
 * A network's rules for one family. The filter chain exists in both families
 * even for a v4-only network, so icc and isolation also hold for IPv6
 * (link-local) traffic on the bridge.
 */
export function networkPlan(n: NetworkRules, family: Family): ObjectPlan {
  const tag = networkTag(n.id);
  const br = n.bridge;
  const N = networkFilterChain(n.id);
  const subnets = n.subnets.filter((s) => familyOf(s) === family);
  const f = (args: string[]): Rule => ({ chain: N, args });
  const rules: Rule[] = [];
  if (n.internal) {
    rules.push(f(['-i', br, '-o', br, '-j', n.icc ? 'ACCEPT' : 'DROP']));
  } else {
    // Replies and published ports first: they hold even with icc off.
    rules.push(f([...ESTABLISHED, '-j', 'ACCEPT']));
    rules.push(f(['-o', br, ...DNATED, '-j', 'ACCEPT']));
    rules.push(f(['-i', br, '-o', br, '-j', n.icc ? 'ACCEPT' : 'DROP']));
    rules.push(f(['-i', br, '-j', BASE.isolation]));
    if (subnets.length) rules.push(f(['-i', br, '-j', 'ACCEPT']));
  }
  // Whatever was not accepted above touches this bridge and is not ours to let through.
  rules.push(f(['-j', 'DROP']));
  const tables: ObjectPlan['tables'] = {
    filter: {
      chains: [N],
      rules,
      jumps: [
        tagged(tag, BASE.forward, ['-i', br, '-j', N]),
        tagged(tag, BASE.forward, ['-o', br, '-j', N]),
        // Published ports are a host service, reachable from other networks too; an
        // internal network has none to reach.
        tagged(tag, BASE.isolation, ['-o', br, ...(n.internal ? [] : ['-m', 'conntrack', '!', '--ctstate', 'DNAT']), '-j', 'DROP']),
      ],
    },
  };

  if (subnets.length && !n.internal) {
    const M = networkNatChain(n.id);
    const nat: Rule[] = [];
    const snatIp = n.hostIp && familyOf(n.hostIp) === family ? n.hostIp : undefined;
    for (const s of subnets) {
      if (n.masquerade) {
        nat.push({ chain: M, args: ['-s', s, '!', '-o', br, '-j', ...(snatIp ? ['SNAT', '--to-source', snatIp] : ['MASQUERADE'])] });
      }
      // Hairpin: a container reaching a published port of its own network (its own
      // included) must see replies come back through the host, so hide its source.
      nat.push({ chain: M, args: ['-s', s, '-o', br, ...DNATED, '-j', 'MASQUERADE'] });
    }
    // Published ports via 127.0.0.1: loopback sources cannot leave the host as they are.
    if (family === 4) nat.push({ chain: M, args: ['-s', '127.0.0.0/8', '-o', br, '-j', 'MASQUERADE'] });
    tables.nat = { chains: [M], rules: nat, jumps: [tagged(tag, BASE.postrouting, ['-j', M])] };
  }
  // The tunnel is IPv4 (the VTEP is an IPv4 address).
  if (n.untrackedUdpPort !== undefined && family === 4) {
    tables.raw = { chains: [], rules: [], jumps: [tagged(tag, 'OUTPUT', ['-p', 'udp', '--dport', String(n.untrackedUdpPort), '-j', 'CT', '--notrack'])] };
  }
  return { tag, family, tables };
}

/** Whether a mapping applies to a container address of this family. */
export function mappingApplies(p: PortMapping, family: Family): boolean {
  const h = p.hostIp ?? '';
  return h === '' || familyOf(h) === family;
}

/** An endpoint's DNAT rules: one per published port of the container address's family. */
export function endpointPlan(e: EndpointPorts): ObjectPlan {
  const family = familyOf(e.containerIp);
  const tag = endpointTag(e.endpointId);
  const P = endpointNatChain(e.endpointId);
  const rules: Rule[] = [];
  for (const p of e.ports) {
    if (!mappingApplies(p, family)) continue;
    const h = p.hostIp ?? '';
    const all = h === '' || h === '0.0.0.0' || h === '::';
    const dest = family === 6 ? `[${e.containerIp}]:${p.containerPort}` : `${e.containerIp}:${p.containerPort}`;
    rules.push({
      chain: P,
      args: [...(all ? [] : ['-d', h]), '-p', p.proto, '-m', p.proto, '--dport', String(p.hostPort), '-j', 'DNAT', '--to-destination', dest],
    });
  }
  // Chain and jump do not depend on the ports, so unpublish() needs only the id and family.
  return { tag, family, tables: { nat: { chains: [P], rules, jumps: [tagged(tag, BASE.dnat, ['-j', P])] } } };
}
