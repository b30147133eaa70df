// This host's registration in the store: its VTEP record on a lease that is
// renewed every third of its TTL. A lease that expired while the store was
// unreachable is replaced by a new one, so the host re-registers by itself.
import { StrandError } from '../common/errors.js';
import type { Netlink } from '../netlink/index.js';
import type { Lease, Store } from '../store/types.js';
import { departedKey, hostKey, type HostRecord } from '../cluster/hosts.js';

export class HostRegistration {
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private record: HostRecord | undefined;

  constructor(
    private readonly store: Store,
    private readonly nl: Netlink,
    private readonly hostId: string,
    private readonly vtep: string,
    private readonly ttlSeconds: number,
    /** Told whether the last attempt to reach the store worked. */
    private readonly onReach: (ok: boolean, err?: Error) => void,
    /** Told after every (re)registration: the cluster may have given this host's endpoints up meanwhile. */
    private readonly onRegistered: () => void = () => undefined,
  ) {}

  /** The record this host advertises: its VTEP and the underlay it sits on. */
  describe(): HostRecord {
    const addr = this.nl.addresses.list({ family: 4 }).find((a) => a.ip === this.vtep);
    if (!addr) throw new StrandError('invalid', `--advertise-addr ${this.vtep} is not an address of this host; give one of its IPv4 addresses`);
    const link = this.nl.links.get(addr.index);
    return { hostId: this.hostId, vtep: this.vtep, underlay: link.name, underlayMtu: link.mtu, since: new Date().toISOString() };
  }

  async register(): Promise<void> {
    this.record ??= this.describe();
    this.lease = await this.store.grantLease(this.ttlSeconds);
    await this.store.put(hostKey(this.hostId), JSON.stringify(this.record), { lease: this.lease.id });
    // Back: no longer a departed host (agent/dead-hosts.ts).
    await this.store.delete(departedKey(this.hostId));
    this.onRegistered();
  }

  /**
   * Publishes the record again when the underlay changed under the running
   * agent (its MTU lowered, say): the cluster's overlay MTU follows it.
   */
  async refresh(): Promise<void> {
    if (!this.record || !this.lease) return;
    const now = this.describe();
    if (now.underlayMtu === this.record.underlayMtu && now.underlay === this.record.underlay) return;
    this.record = { ...now, since: this.record.since };
    await this.store.put(hostKey(this.hostId), JSON.stringify(this.record), { lease: this.lease.id });
  }

  /** Registers, then keeps renewing until stop(). */
  async start(): Promise<void> {
    await this.register();
    this.timer = setInterval(() => void this.keepAlive(), Math.max(200, (this.ttlSeconds * 1000) / 3));
  }

  private renewing = false;

  private async keepAlive(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      try {
        await this.lease!.renew();
      } catch (err) {
        // Expired (the store was away longer than the TTL): register again.
        if (!(err instanceof StrandError && err.code === 'not-found')) throw err;
        await this.register();
      }
      this.onReach(true);
    } catch (err) {
      this.onReach(false, err as Error);
    } finally {
      this.renewing = false;
    }
  }

  /** Stops renewing. The lease is left to expire rather than revoked: a restarting agent keeps its peers' entries meanwhile. */
  stop(): void {
    clearInterval(this.timer);
  }

  get leaseId(): string | undefined {
    return this.lease?.id;
  }
}
