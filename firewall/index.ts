// strand's firewall: every iptables rule strand makes, in chains of its own
// (layout in rules.ts), for the bridge driver to call. One operation is one
// `iptables-restore --noflush` per IP family that touches only the
// operation's own chains and a few tagged jumps, so its cost does not grow
// with what is installed. If the kernel state is not what the operation
// expects (re-adding, removing twice, after a crash), it falls back to
// reading iptables-save once and repairing exactly that object.
//
// Kernel settings the driver must make (strand's firewall sets no sysctl):
//   net.ipv4.ip_forward=1 (and net.ipv6.conf.all.forwarding=1 for IPv6 networks);
//   net.bridge.bridge-nf-call-iptables=1 and -ip6tables=1 (br_netfilter, per namespace:
//     bridged traffic must pass iptables for icc=false and for hairpin DNAT);
//   net.ipv4.conf.<bridge>.route_localnet=1 for ports published on 127.0.0.1;
//   hairpin mode on each container's bridge port, so a container reaches its own published port.
import { existsSync } from 'node:fs';
import { StrandError } from '../common/errors.js';
import type { NetNs } from '../netlink/index.js';
import { backendFromEnv, cachedBackend, checkBackend, toolName, type Backend, type Family } from './backend.js';
import { runTool, type ToolResult } from './exec.js';
import { checkId, endpointNatChain, networkFilterChain, networkNatChain, networkTag, endpointTag } from './names.js';
import { endpointPlan, networkPlan, type ObjectPlan } from './rules.js';
import { parseSave, type Saved } from './save.js';
import { addScript, ensureBaseScript, isEmptyScript, removeAllScript, removeScript, render, repairScript, type Script } from './script.js';
import { validateEndpoint, validateNetwork } from './validate.js';
import { FIREWALL_LOCK, withHostLock } from '../common/host-lock.js';
import type { EndpointPorts, NetworkRules } from './types.js';

export type { Backend, Family } from './backend.js';
export type { EndpointPorts, NetworkRules, PortMapping, Proto } from './types.js';
export { parsePortSpec, pickFreePort, boundPorts, DYNAMIC_PORT_RANGE } from './ports.js';
export { detectBackend, forgetBackends } from './backend.js';

export interface FirewallOptions {
  /** The namespace whose iptables to program; the calling thread's own when absent. */
  ns?: NetNs;
  /** Force a backend; else STRAND_IPTABLES, else detection (cached per namespace). */
  backend?: Backend;
}

/** What one object owns, however it was configured. */
interface Target {
  tag: string;
  what: string;
  chains: Set<string>;
}

export class Firewall {
  private queue: Promise<unknown> = Promise.resolve();
  private baseReady = false;

  private constructor(
    readonly backend: Backend,
    private readonly ns: NetNs | undefined,
    /** IP families this kernel has; IPv6 rules only when it has IPv6. */
    readonly families: readonly Family[],
  ) {}

  static async open(options: FirewallOptions = {}): Promise<Firewall> {
    const backend = options.backend !== undefined ? checkBackend(options.backend, 'Firewall options') : (backendFromEnv() ?? (await cachedBackend(options.ns)));
    const families: Family[] = existsSync('/proc/sys/net/ipv6') ? [4, 6] : [4];
    return new Firewall(backend, options.ns, families);
  }

  /** strand's chains and the jumps into them from the built-in chains; idempotent. */
  ensureBase(): Promise<void> {
    return this.exclusive(() => this.ensureBaseNow());
  }

  /** Forwarding, NAT, icc and isolation rules of a network; idempotent (re-adding replaces). */
  async addNetwork(n: NetworkRules): Promise<void> {
    validateNetwork(n);
    return this.exclusive(() => this.add(networkTarget(n.id), this.families.map((f) => networkPlan(n, f))));
  }

  /** Removes everything addNetwork made; succeeds if it is already gone. */
  async removeNetwork(n: NetworkRules): Promise<void> {
    validateNetwork(n);
    return this.exclusive(() => this.remove(networkTarget(n.id), this.families.map((f) => networkPlan(n, f))));
  }

  /** Makes the endpoint's published ports exactly e.ports (of its address's family); idempotent. */
  async publish(e: EndpointPorts): Promise<void> {
    validateEndpoint(e);
    const plan = endpointPlan(e);
    if (!plan.tables.nat?.rules.length) return this.unpublish(e);
    return this.exclusive(() => this.add(endpointTarget(e.endpointId), [plan]));
  }

  /** Removes the endpoint's published ports; succeeds if they are already gone. */
  async unpublish(e: EndpointPorts): Promise<void> {
    validateEndpoint(e);
    return this.exclusive(() => this.remove(endpointTarget(e.endpointId), [endpointPlan(e)]));
  }

  /** Removes a network's rules knowing only its id (GC of what inventory() found); reads iptables-save. */
  async removeNetworkById(id: string): Promise<void> {
    checkId(id, 'network id');
    return this.exclusive(() => this.repair(networkTarget(id), this.families));
  }

  /** Removes an endpoint's published ports knowing only its id; reads iptables-save. */
  async removeEndpointById(id: string): Promise<void> {
    checkId(id, 'endpoint id');
    return this.exclusive(() => this.repair(endpointTarget(id), this.families));
  }

  /** The networks and endpoints strand has rules for now, from iptables-save (for reconcile/GC). */
  inventory(): Promise<{ networks: string[]; endpoints: string[] }> {
    return this.exclusive(async () => {
      const networks = new Set<string>();
      const endpoints = new Set<string>();
      for (const f of this.families) {
        for (const t of (await this.save(f)).values()) {
          for (const r of t.rules) {
            if (r.tag?.startsWith('strand:n:')) networks.add(r.tag.slice('strand:n:'.length));
            if (r.tag?.startsWith('strand:e:')) endpoints.add(r.tag.slice('strand:e:'.length));
          }
        }
      }
      return { networks: [...networks].sort(), endpoints: [...endpoints].sort() };
    });
  }

  /** Removes every strand chain and every jump into one (uninstall, tests). */
  removeAll(): Promise<void> {
    return this.exclusive(async () => {
      this.baseReady = false;
      for (const f of this.families) {
        const script = removeAllScript(await this.save(f));
        if (isEmptyScript(script)) continue;
        const r = await this.restore(f, script);
        if (r.status !== 0) throw this.failure('remove all strand rules', f, script, r);
      }
    });
  }

  // One operation at a time, in this process and across processes: the fast paths assume nothing changes under them.
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const locked = () => withHostLock(FIREWALL_LOCK, fn);
    const next = this.queue.then(locked, locked);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async ensureBaseNow(): Promise<void> {
    for (const f of this.families) {
      const script = ensureBaseScript(await this.save(f), f);
      if (isEmptyScript(script)) continue;
      const r = await this.restore(f, script);
      if (r.status !== 0) throw this.failure("create strand's base chains", f, script, r);
    }
    this.baseReady = true;
  }

  private async add(target: Target, plans: ObjectPlan[]): Promise<void> {
    if (!this.baseReady) await this.ensureBaseNow();
    if (await this.fast(plans.map((p) => [p.family, addScript(p)]))) return;
    // Something of it exists already (or the base went missing): repair from what is installed.
    try {
      for (const p of plans) {
        const script = repairScript(await this.save(p.family), target.tag, p, target.chains, true, p.family);
        const r = await this.restore(p.family, script);
        if (r.status !== 0) throw this.failure(`add ${target.what}`, p.family, script, r);
      }
    } catch (err) {
      // Leave nothing half made.
      await this.repair(target, plans.map((p) => p.family)).catch(() => undefined);
      throw err;
    }
  }

  private async remove(target: Target, plans: ObjectPlan[]): Promise<void> {
    if (await this.fast(plans.map((p) => [p.family, removeScript(p)]))) return;
    await this.repair(target, this.families);
  }

  /** Removes whatever of the object exists, per family, from iptables-save. */
  private async repair(target: Target, families: readonly Family[]): Promise<void> {
    for (const f of families) {
      const script = repairScript(await this.save(f), target.tag, undefined, target.chains, false, f);
      if (isEmptyScript(script)) continue;
      const r = await this.restore(f, script);
      if (r.status !== 0) throw this.failure(`remove ${target.what}`, f, script, r);
    }
  }

  /** Runs each family's script; false as soon as one fails. */
  private async fast(scripts: [Family, Script][]): Promise<boolean> {
    for (const [f, script] of scripts) {
      if (isEmptyScript(script)) continue;
      if ((await this.restore(f, script)).status !== 0) return false;
    }
    return true;
  }

  private restore(family: Family, script: Script): Promise<ToolResult> {
    // -w: wait for the xtables lock rather than fail when another tool holds it.
    return runTool(this.ns, toolName(this.backend, family, 'restore'), ['--noflush', '-w', '10'], render(script));
  }

  private async save(family: Family): Promise<Saved> {
    const tool = toolName(this.backend, family, 'save');
    const r = await runTool(this.ns, tool, []);
    if (r.status !== 0) throw new StrandError('kernel', `${tool} failed (${r.status}): ${r.stderr.trim()}`);
    return parseSave(r.stdout);
  }

  private failure(action: string, family: Family, script: Script, r: ToolResult): StrandError {
    const tool = toolName(this.backend, family, 'restore');
    const lines = render(script).split('\n');
    // Both backends name the input line they refused; show it.
    const n = Number(/line:? (\d+)/.exec(r.stderr)?.[1]);
    const bad = n > 0 && lines[n - 1] ? ` (at "${lines[n - 1]}")` : '';
    const why = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Try ') && !l.startsWith('#')).join('; ');
    return new StrandError('kernel', `cannot ${action}: ${tool} refused${bad}: ${why}`);
  }
}

function networkTarget(id: string): Target {
  return { tag: networkTag(id), what: `firewall rules of network "${id}"`, chains: new Set([networkFilterChain(id), networkNatChain(id)]) };
}

function endpointTarget(id: string): Target {
  return { tag: endpointTag(id), what: `published ports of endpoint "${id}"`, chains: new Set([endpointNatChain(id)]) };
}
