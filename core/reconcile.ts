// After a crash or a restart: the kernel made to match the store again.
// Networks' kernel state is restored, sandboxes whose owner died go, and what
// no record owns (links, rules, addresses) is removed.
import { existsSync } from 'node:fs';
import type { CoreContext } from './context.js';
import { processAlive } from './process-info.js';
import type { Sandboxes } from './sandboxes.js';
import type { SandboxRecord } from './types.js';

export interface ReconcileReport {
  restored: string[];
  removedSandboxes: string[];
  removedOrphans: string[];
  releasedAddresses: string[];
}

export class Reconciler {
  constructor(
    private readonly ctx: CoreContext,
    private readonly sandboxes: Sandboxes,
    /** Removes a sandbox with its endpoints (the Controller composes it). */
    private readonly removeSandbox: (sb: SandboxRecord) => Promise<void>,
    /** Removes the CNI networks with no attachment left; their names. */
    private readonly sweepCniNetworks: () => Promise<string[]>,
  ) {}

  /** Recreates what persisted networks need, removes dead sandboxes and what no record owns. */
  async reconcile(): Promise<ReconcileReport> {
    const { records, ipam } = this.ctx;
    const removedSandboxes = await this.gcSandboxes();
    const networks = await records.networks.listNetworks();
    const endpoints = await records.endpoints.listEndpoints();
    const restored: string[] = [];
    for (const net of networks) {
      await this.ctx.driver(net.driver).restoreNetwork(net, endpoints.filter((e) => e.networkId === net.id));
      restored.push(net.name);
    }
    const removedOrphans: string[] = [];
    for (const d of this.ctx.allDrivers()) removedOrphans.push(...((await d.orphans?.(networks, endpoints)) ?? []));
    removedOrphans.push(...(await this.sweepCniNetworks()));
    const live = new Set(endpoints.map((e) => e.id));
    const released = await ipam.gc((owner) => (owner.endpointId ? live.has(owner.endpointId) : true));
    return { restored, removedSandboxes, removedOrphans, releasedAddresses: released.map((a) => a.address) };
  }

  /** Removes sandboxes whose foreground owner is gone or whose namespace vanished. */
  async gcSandboxes(): Promise<string[]> {
    const removed: string[] = [];
    const all = await this.ctx.records.sandboxes.listSandboxes();
    // Sharers first, so their targets are free to go.
    for (const sb of [...all].sort((a, b) => Number(!!b.sharesWith) - Number(!!a.sharesWith))) {
      const ownerGone = sb.ownerPid !== undefined && !processAlive(sb.ownerPid, sb.ownerStart);
      const nsGone = sb.kind === 'netns' && !existsSync(sb.netnsPath);
      const targetGone = sb.sharesWith !== undefined && !all.some((o) => o.id === sb.sharesWith && !removed.includes(o.name));
      if (ownerGone || nsGone || targetGone) {
        // The command of a run whose strand died would otherwise keep going, cut off.
        await this.sandboxes.stop(sb, 1000);
        await this.removeSandbox(sb);
        removed.push(sb.name);
      }
    }
    return removed;
  }
}
