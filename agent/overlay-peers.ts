// The overlay part of the per-host agent: keeps this host registered (a
// leased VTEP record), mirrors the cluster's overlay networks, endpoints and
// live hosts from the store (list, then watch from that revision), and makes
// every local vxlan device's FDB and neighbour tables match them. Events
// trigger an apply; a periodic full resync re-lists everything, so a missed
// event, a store outage or an agent restart converges. While the store is
// unreachable the kernel tables are left as they are: the data plane keeps
// working on the last known peers.
import { writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { Netlink } from '../netlink/index.js';
import type { Store, Watcher, WatchEvent } from '../store/types.js';
import { GLOBAL_ENDPOINTS, GLOBAL_NETWORKS, type GlobalEndpoint } from '../core/records/index.js';
import type { NetworkRecord } from '../core/types.js';
import { HOSTS_PREFIX, type HostRecord } from '../cluster/hosts.js';
import type { Ipam } from '../ipam/index.js';
import { DeadHostReaper } from './dead-hosts.js';
import { HostRegistration } from './overlay-host.js';
import { apply, changeCount, diff, emptyView, tables, type ClusterView, type PeerTable } from './overlay-tables.js';
import { loadView } from './overlay-view.js';
import { clusterDataPlane } from '../runtime/index.js';

export interface OverlayPeersOptions {
  store: Store;
  hostId: string;
  advertiseAddr: string;
  leaseTtlSeconds: number;
  resyncMs: number;
  /** Where the agent writes its status (store reachability, last resync, tables), for `strand daemon dump`. */
  statusFile: string;
  /** Removes this host's side of an overlay network that was deleted (from any host). */
  teardown?: (network: NetworkRecord) => Promise<void>;
  /** How long a host without a lease keeps its endpoints on global networks before an agent removes them, and the IPAM that frees their addresses. */
  deadHosts?: { graceMs: number; ipam: Ipam };
  /** After each (re)registration: makes this host's endpoints on global networks consistent with the cluster again (agent/endpoint-reclaim.ts). */
  reclaim?: () => Promise<void>;
  log?: (line: string) => void;
}

export interface AgentStatus {
  hostId: string;
  vtep: string;
  pid: number;
  storeReachable: boolean;
  lastError?: string;
  lastResync?: string;
  leaseId?: string;
  tables: PeerTable[];
}

export class OverlayPeers {
  private readonly nl = Netlink.open();
  private readonly plane = clusterDataPlane(this.nl);
  private readonly registration: HostRegistration;
  private view: ClusterView = emptyView();
  private watchers: Watcher[] = [];
  private watching = false;
  private timer: NodeJS.Timeout | undefined;
  private applyQueued = false;
  private storeReachable = true;
  private lastError: string | undefined;
  private lastResync: string | undefined;
  private stopped = false;
  private reclaimPending = false;
  private readonly reaper: DeadHostReaper | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly o: OverlayPeersOptions) {
    this.log = o.log ?? ((line) => console.log(`strand daemon: overlay: ${line}`));
    this.registration = new HostRegistration(o.store, this.nl, o.hostId, o.advertiseAddr, o.leaseTtlSeconds, (ok, err) => this.reach(ok, err), () => (this.reclaimPending = true));
    if (o.deadHosts) this.reaper = new DeadHostReaper({ store: o.store, ipam: o.deadHosts.ipam, hostId: o.hostId, graceMs: o.deadHosts.graceMs, log: this.log });
  }

  /** Registers the host (before core reconciles, which may need the VTEP for overlay networks). */
  async register(): Promise<void> {
    await this.registration.start();
  }

  /** First full sync, then watches and the periodic resync. */
  async start(): Promise<void> {
    await this.resync();
    this.timer = setInterval(() => void this.resync(), this.o.resyncMs);
  }

  private reach(ok: boolean, err?: Error): void {
    if (ok !== this.storeReachable) this.log(ok ? 'store reachable again; resynchronizing' : `store unreachable (${err?.message ?? 'unknown error'}); keeping the current peer tables`);
    if (!ok) this.lastError = err?.message;
    const back = ok && !this.storeReachable;
    this.storeReachable = ok;
    if (back) void this.resync();
    else this.writeStatus();
  }

  /** Re-lists the cluster from the store, restarts dead watches, and applies. */
  async resync(): Promise<void> {
    if (this.stopped) return;
    let view: ClusterView;
    try {
      // An underlay whose MTU changed is published before the view is read, so this host's own tables see it too.
      await this.registration.refresh();
      let rev: number;
      ({ view, revision: rev } = await loadView(this.o.store));
      if (!view.hosts.has(this.o.hostId)) await this.registration.register();
      for (const [id, net] of this.view.networks) if (!view.networks.has(id)) this.networkGone(net);
      this.view = view;
      if (!this.watching) await this.watch(rev + 1);
      this.lastResync = new Date().toISOString();
      this.reach(true);
    } catch (err) {
      this.reach(false, err as Error);
      // Watches may have died with the connection; start them again on the next good resync.
      await this.unwatch();
      return;
    }
    this.applyNow();
    this.writeStatus();
    // After the tables: store work for departed hosts must not delay the data plane.
    if (!(await this.housekeeping(view))) this.writeStatus();
  }

  /** Endpoints of this host the cluster gave up (after a registration), and hosts gone for good; false if something failed. */
  private async housekeeping(view: ClusterView): Promise<boolean> {
    let ok = true;
    if (this.reclaimPending && this.o.reclaim) {
      this.reclaimPending = false;
      try {
        await this.o.reclaim();
      } catch (err) {
        this.reclaimPending = true; // again at the next resync
        ok = false;
        this.lastError = `reclaiming endpoints: ${(err as Error).message}`;
        this.log(`checking this host's endpoints against the cluster failed: ${(err as Error).message}`);
      }
    }
    try {
      await this.reaper?.check(view);
    } catch (err) {
      ok = false;
      this.lastError = `dead hosts: ${(err as Error).message}`;
      this.log(`cleaning up after departed hosts failed: ${(err as Error).message}`);
    }
    return ok;
  }

  private async watch(fromRevision: number): Promise<void> {
    const onError = (err: Error): void => {
      this.log(`watch ended (${err.message}); the next resync restarts it`);
      this.watching = false;
    };
    this.watching = true;
    try {
      this.watchers = await Promise.all(
        [HOSTS_PREFIX, GLOBAL_NETWORKS, GLOBAL_ENDPOINTS].map((prefix) => this.o.store.watch(prefix, { fromRevision, onError }, (ev) => this.onEvent(prefix, ev))),
      );
    } catch (err) {
      this.watching = false;
      throw err;
    }
  }

  private async unwatch(): Promise<void> {
    this.watching = false;
    const old = this.watchers.splice(0);
    await Promise.all(old.map((w) => w.cancel().catch(() => undefined)));
  }

  private onEvent(prefix: string, ev: WatchEvent): void {
    try {
      this.record(prefix, ev);
    } catch (err) {
      // A record we cannot read must not stop the agent; the resync reads everything again.
      this.log(`ignoring an unreadable change under ${prefix}: ${(err as Error).message}`);
    }
  }

  private record(prefix: string, ev: WatchEvent): void {
    const key = ev.type === 'put' ? ev.kv.key : ev.key;
    const id = key.slice(prefix.length);
    if (prefix === HOSTS_PREFIX) {
      if (ev.type === 'put') this.view.hosts.set(id, JSON.parse(ev.kv.value) as HostRecord);
      else if (this.view.hosts.delete(id)) this.log(`host ${id} left (lease expired or removed)`);
    } else if (prefix === GLOBAL_NETWORKS) {
      const known = this.view.networks.get(id);
      if (ev.type === 'put') this.view.networks.set(id, JSON.parse(ev.kv.value) as NetworkRecord);
      else if (known && this.view.networks.delete(id)) this.networkGone(known);
    } else {
      // endpoints/<networkId>/<endpointId>
      const epId = id.slice(id.indexOf('/') + 1);
      if (ev.type === 'put') this.view.endpoints.set(epId, JSON.parse(ev.kv.value) as GlobalEndpoint);
      else this.view.endpoints.delete(epId);
    }
    // Coalesce a burst of events (one transaction puts several keys) into one apply.
    if (!this.applyQueued) {
      this.applyQueued = true;
      setImmediate(() => {
        this.applyQueued = false;
        this.applyNow();
      });
    }
  }

  /** A deleted network's bridge, vxlan device and rules go from this host too (no endpoints can be left: core refuses). */
  private networkGone(net: NetworkRecord): void {
    if (net.driver !== 'overlay' || !this.o.teardown) return;
    this.o.teardown(net).then(
      () => this.log(`network ${net.name} was removed; removed its devices here`),
      (err: Error) => this.log(`removing network ${net.name}'s devices failed: ${err.message}`),
    );
  }

  /** Makes the kernel match the view; returns the tables as they were before. */
  applyNow(): PeerTable[] {
    if (this.stopped) return [];
    const current = tables(this.nl, this.view, this.o.hostId, this.plane);
    for (const t of current) {
      if (!t.present) continue;
      this.alignMtu(t);
      const c = diff(t);
      if (!changeCount(c)) continue;
      try {
        apply(this.nl, t.device, c);
      } catch (err) {
        // The device may have gone under us (network removed); the next resync settles it.
        this.lastError = `${t.device}: ${(err as Error).message}`;
        this.log(`programming ${t.device} failed: ${(err as Error).message}`);
      }
    }
    return current;
  }

  /** The network's devices and containers follow the cluster's smallest underlay (see drivers/overlay/mtu.ts). */
  private alignMtu(t: PeerTable): void {
    if (t.mtu.actual === t.mtu.desired || !Number.isFinite(t.mtu.desired)) return;
    try {
      const changed = this.plane.setMtu(t.networkId, t.mtu.desired);
      this.log(`network ${t.network}: MTU ${t.mtu.actual} -> ${t.mtu.desired} (${changed.join(', ')})`);
    } catch (err) {
      this.lastError = `${t.device}: ${(err as Error).message}`;
      this.log(`setting the MTU of network ${t.network} failed: ${(err as Error).message}`);
    }
  }

  status(): AgentStatus {
    return {
      hostId: this.o.hostId,
      vtep: this.o.advertiseAddr,
      pid: process.pid,
      storeReachable: this.storeReachable,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.lastResync ? { lastResync: this.lastResync } : {}),
      ...(this.registration.leaseId ? { leaseId: this.registration.leaseId } : {}),
      tables: tables(this.nl, this.view, this.o.hostId, this.plane),
    };
  }

  private writeStatus(): void {
    mkdirSync(dirname(this.o.statusFile), { recursive: true });
    const tmp = `${this.o.statusFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.status(), null, 2));
    renameSync(tmp, this.o.statusFile);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.registration.stop();
    await this.unwatch();
    this.nl.close();
  }
}
