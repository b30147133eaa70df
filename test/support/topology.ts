// A small world of namespaces for firewall tests: a "host" namespace where
// strand's firewall runs, bridges in it, "container" namespaces attached to
// a bridge by veth, and an "outside" namespace behind another veth that
// plays the internet with documentation addresses (203.0.113.0/24,
// 2001:db8:113::/64). No traffic ever leaves the namespaces the test made.
import { writeSysctl, type NetNs } from '../../netlink/index.js';
import { run, type TestBed } from './harness.js';
import type { Backend } from '../../firewall/index.js';

export const HOST_OUT = '203.0.113.1';
export const OUTSIDE = '203.0.113.2';
export const HOST_OUT6 = '2001:db8:113::1';
export const OUTSIDE6 = '2001:db8:113::2';

export interface Container {
  name: string;
  ns: NetNs;
  ip: string;
  /** Host-side veth on the bridge. */
  port: string;
}

export class World {
  readonly host: { name: string; ns: NetNs };
  readonly outside: { name: string; ns: NetNs };
  private seq = 0;

  constructor(private readonly bed: TestBed) {
    this.host = bed.netns('h');
    this.outside = bed.netns('o');
    const nl = bed.netlink(this.host.ns);
    const onl = bed.netlink(this.outside.ns);
    nl.links.add({ kind: 'veth', name: 'out0', up: true, peer: { name: 'eth0', netns: this.outside.ns } });
    for (const [l, n] of [['lo', nl], ['out0', nl], ['lo', onl], ['eth0', onl]] as const) n.links.set(l, { up: true });
    nl.addresses.add('out0', `${HOST_OUT}/24`);
    nl.addresses.add('out0', `${HOST_OUT6}/64`, { noDad: true });
    onl.addresses.add('eth0', `${OUTSIDE}/24`);
    onl.addresses.add('eth0', `${OUTSIDE6}/64`, { noDad: true });
    writeSysctl('net.ipv4.ip_forward', 1, this.host.ns);
    writeSysctl('net.ipv6.conf.all.forwarding', 1, this.host.ns);
    // br_netfilter, per namespace: bridged frames pass iptables (icc, hairpin).
    writeSysctl('net.bridge.bridge-nf-call-iptables', 1, this.host.ns);
    writeSysctl('net.bridge.bridge-nf-call-ip6tables', 1, this.host.ns);
  }

  /** A bridge with gateway addresses (CIDRs), as the bridge driver makes it. */
  bridge(name: string, gateways: string[]): string {
    const nl = this.bed.netlink(this.host.ns);
    nl.links.add({ kind: 'bridge', name, up: true });
    for (const g of gateways) nl.addresses.add(name, g, { noDad: true });
    writeSysctl(`net.ipv4.conf.${name}.route_localnet`, 1, this.host.ns);
    return name;
  }

  /** A container namespace on `bridge` with address `cidr` and its default route via `gateway`. */
  container(bridge: string, cidr: string, gateway: string, extra?: { cidr: string; gateway: string }): Container {
    const c = this.bed.netns('c');
    const nl = this.bed.netlink(this.host.ns);
    const cnl = this.bed.netlink(c.ns);
    const port = `v${this.seq++}`;
    nl.links.add({ kind: 'veth', name: port, master: bridge, up: true, peer: { name: 'eth0', netns: c.ns } });
    // Hairpin: a container's packets DNATed back to itself leave by the port they came in.
    nl.links.setBridgePort(port, { hairpin: true });
    cnl.links.set('lo', { up: true });
    cnl.links.set('eth0', { up: true });
    cnl.addresses.add('eth0', cidr, { noDad: true });
    cnl.routes.add({ dst: 'default', gateway });
    if (extra) {
      cnl.addresses.add('eth0', extra.cidr, { noDad: true });
      cnl.routes.add({ dst: 'default', gateway: extra.gateway });
    }
    return { ...c, ip: cidr.split('/')[0]!, port };
  }

  /** Attaches an existing container namespace to another bridge as eth1. */
  attach(c: Container, bridge: string, cidr: string): void {
    const nl = this.bed.netlink(this.host.ns);
    const cnl = this.bed.netlink(c.ns);
    const port = `v${this.seq++}`;
    nl.links.add({ kind: 'veth', name: port, master: bridge, up: true, peer: { name: 'eth1', netns: c.ns } });
    cnl.links.set('eth1', { up: true });
    cnl.addresses.add('eth1', cidr, { noDad: true });
  }

  /** The FORWARD policy Docker sets: nothing is forwarded unless a rule says so. */
  dropForwarding(backend: Backend): void {
    run('ip', ['netns', 'exec', this.host.name, `iptables-${backend}`, '-P', 'FORWARD', 'DROP']);
    run('ip', ['netns', 'exec', this.host.name, `ip6tables-${backend}`, '-P', 'FORWARD', 'DROP']);
  }

  /** iptables-save (or ip6tables-save) of the host namespace, read by iptables itself. */
  save(backend: Backend, family: 4 | 6 = 4): string {
    const tool = `${family === 4 ? 'iptables' : 'ip6tables'}-${backend}-save`;
    return run('ip', ['netns', 'exec', this.host.name, tool]).stdout;
  }
}
