// IPAM: address spaces, pools and addresses on top of the store.
//
// Every change is one store transaction with compare-and-swap checks, retried
// on 'conflict', so any number of processes and hosts may share a pool:
// - an allocation checks that the address key is absent and that the pool's
//   state key (cursor and counts) is unchanged since it was read;
// - each pool is a key of its own, written once; creating one CASes the
//   space's small guard key, so two hosts cannot create overlapping pools.
//   (A space's pools used to be one registry key rewritten on every change,
//   which made the store's history hold a copy of every pool per change; a
//   registry left by an earlier version is moved into pool keys on first use.)
// Next-free allocation starts after the pool's cursor (the last address it
// handed out), so its cost does not depend on the pool's size or on how many
// addresses are taken, until the cursor wraps into taken addresses; then it
// lists one aligned block of 256 addresses at a time.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { KeyValue, Store, TxnCheck, TxnOp } from '../store/types.js';
import { StrandError, isStrandError } from '../common/errors.js';
import { type Cidr, contains, formatCidr, formatIp, ipFromHex, ipHex, overlaps, parseCidr, parseIp } from './cidr.js';
import { Keys, checkHostId, spacePrefix } from './keys.js';
import { type PoolShape, blockOf, capacity, firstFreeFrom, inRange, isUnusable, nextCandidate } from './range.js';
import { withRetry } from './retry.js';
import { DOCKER_GLOBAL_DEFAULTS, DOCKER_LOCAL_DEFAULTS, type DefaultPool, type ParsedDefault, describeDefaults, parseDefaults, pickDefault } from './select.js';
import type { AddressSpace, Allocation, Owner, Pool, PoolState } from './types.js';
import { type PoolRequest, checkOwner, checkPoolRequest, checkSpace, describeOwner, shapeOf } from './validate.js';

export type { AddressSpace, Allocation, Owner, Pool, PoolState } from './types.js';
export type { PoolRequest } from './validate.js';
export type { DefaultPool } from './select.js';
export { DOCKER_GLOBAL_DEFAULTS, DOCKER_LOCAL_DEFAULTS } from './select.js';

export interface IpamOptions {
  store: Store;
  /** Names this host's local space and its allocations; default: the host name. */
  hostId?: string;
  /** Default pools per space and family; default Docker's (no IPv6 defaults). */
  defaultPools?: { local?: readonly DefaultPool[]; global?: readonly DefaultPool[] };
  /** CIDRs routed on this host, which default pools must avoid (netlink supplies it); default none. */
  hostRoutes?: () => Promise<string[]>;
  /** Compare-and-swap attempts before a retryable 'conflict'; default 400. */
  attempts?: number;
}

export interface AddressRequest {
  /** Who will hold the address. Optional only for gateway requests. */
  owner?: Owner;
  /** A given address; absent: the next free one in the pool's range. */
  address?: string;
  /**
   * Docker's RequestAddressType=com.docker.network.gateway: returns the pool's
   * reserved gateway if it has one; otherwise allocates (the given or the
   * next free address) and marks the allocation as the gateway, which GC
   * leaves alone.
   */
  gateway?: boolean;
  /** Refuse a given address outside the pool's ip range (CNI host-local); by default, as Docker, any host address of the subnet may be requested. */
  strictRange?: boolean;
}

export interface AddressResult {
  poolId: string;
  address: string;
  /** The address with the subnet's prefix length, as Docker and CNI return it. */
  cidr: string;
  /** The pool's reserved gateway, if any. */
  gateway?: string;
}

export interface PoolUsage {
  allocated: number;
  /** Of those, how many lie in the range next-free allocation draws from. */
  inRange: number;
  /** Addresses next-free allocation can hand out in total. */
  capacity: bigint;
}

/** The one-key registry earlier versions kept at <space>/pools. */
interface LegacyRegistry {
  pools: Record<string, Pool>;
}

interface PoolSet {
  pools: Map<string, Pool>;
  /** modRevision of the guard key as read (0: absent); a creation CASes it. */
  guard: number;
}

const POOL_ID = /^(local|global)-[0-9a-f]{16}$/;
/** Addresses per listed block when probing past taken addresses: 2^8, one hex-digit pair of the key. */
const BLOCK_BITS = 8;
/** Pools moved per transaction when migrating a registry (etcd allows 128 operations per transaction by default). */
const MIGRATE_BATCH = 100;

export class Ipam {
  readonly hostId: string;
  private readonly store: Store;
  private readonly keys: Record<AddressSpace, Keys>;
  private readonly defaults: Record<AddressSpace, ParsedDefault[]>;
  private readonly hostRoutes: () => Promise<string[]>;
  private readonly attempts: number;
  // Pools never change after creation and ids are never reused, so a cached
  // pool is valid as long as its state key exists, which every txn checks.
  private readonly poolCache = new Map<string, Pool>();
  /** Parsed subnets by pool id, for the overlap checks of requestPool. */
  private readonly subnetCache = new Map<string, Cidr>();
  // Every change to a space's pools rewrites its guard key, so the pools
  // listed when the guard had a revision are still the pools while it has.
  private readonly poolSets = new Map<AddressSpace, PoolSet>();

  constructor(options: IpamOptions) {
    this.store = options.store;
    this.hostId = checkHostId(options.hostId ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-'));
    this.keys = {
      local: new Keys(spacePrefix('local', this.hostId)),
      global: new Keys(spacePrefix('global', this.hostId)),
    };
    this.defaults = {
      local: parseDefaults(options.defaultPools?.local ?? DOCKER_LOCAL_DEFAULTS),
      global: parseDefaults(options.defaultPools?.global ?? DOCKER_GLOBAL_DEFAULTS),
    };
    this.hostRoutes = options.hostRoutes ?? (async () => []);
    this.attempts = options.attempts ?? 400;
  }

  // ---- pools ----

  /**
   * Creates a pool: the given subnet, which must overlap no pool of the same
   * space ('exists' naming that pool), or the next default subnet that
   * overlaps no pool and no host route ('exhausted' when none is left).
   */
  async requestPool(request: PoolRequest): Promise<Pool> {
    const req = checkPoolRequest(request);
    const keys = this.keys[req.space];
    const routes = req.subnet ? [] : await this.routeCidrs();
    return withRetry({ attempts: this.attempts, what: `creating a pool in the ${req.space} space` }, async () => {
      const { pools, guard } = await this.readPools(req.space);
      const existing = [...pools.values()];
      let subnet: Cidr;
      if (req.subnet) {
        subnet = req.subnet;
        for (const p of existing) {
          if (overlaps(subnet, this.subnetOf(p))) {
            throw new StrandError('exists', `subnet ${formatCidr(subnet)} overlaps pool ${p.id} (${p.subnet}) in the ${req.space} space`);
          }
        }
      } else {
        const taken = [...existing.map((p) => this.subnetOf(p)), ...routes];
        const picked = pickDefault(this.defaults[req.space], taken, req.family);
        if (!picked) {
          const list = this.defaults[req.space].filter((d) => d.base.family === req.family);
          throw new StrandError(
            'exhausted',
            list.length === 0
              ? `no default IPv${req.family} pools are configured for the ${req.space} space; give a subnet`
              : `every default IPv${req.family} pool of the ${req.space} space (${describeDefaults(list)}) overlaps a pool or a host route; give a subnet`,
          );
        }
        subnet = picked;
      }
      const pool: Pool = {
        id: `${req.space}-${randomBytes(8).toString('hex')}`,
        space: req.space,
        subnet: formatCidr(subnet),
        auxAddresses: Object.fromEntries(req.aux.map(([n, v]) => [n, formatIp({ family: subnet.family, value: v })])),
        options: req.options,
        createdBy: this.hostId,
      };
      if (req.ipRange) pool.ipRange = formatCidr(req.ipRange);
      if (req.rangeStart !== undefined) pool.rangeStart = formatIp({ family: subnet.family, value: req.rangeStart });
      if (req.rangeEnd !== undefined) pool.rangeEnd = formatIp({ family: subnet.family, value: req.rangeEnd });
      if (req.gateway !== undefined) pool.gateway = formatIp({ family: subnet.family, value: req.gateway });
      const state: PoolState = { cursor: '', allocated: 0, inRange: 0 };
      let committed: number;
      try {
        committed = (await this.store.txn(
          [
            { key: keys.poolGuard(), modRevision: guard },
            { key: keys.legacyRegistry(), absent: true },
          ],
          [
            { op: 'put', key: keys.pool(pool.id), value: JSON.stringify(pool) },
            { op: 'put', key: keys.state(pool.id), value: JSON.stringify(state) },
            { op: 'put', key: keys.poolGuard(), value: pool.id },
          ],
        )).revision;
      } catch (err) {
        // Perhaps a registry key of an earlier version came back: list afresh.
        this.poolSets.delete(req.space);
        throw err;
      }
      // The guard was unchanged up to this commit, so the set read is exact:
      // with this pool it is the set at the guard's new revision.
      const set = this.poolSets.get(req.space);
      if (set && set.guard === guard) {
        set.pools.set(pool.id, pool);
        set.guard = committed;
      }
      this.poolCache.set(pool.id, pool);
      return pool;
    });
  }

  /** Deletes a pool; 'in-use' while it still has allocated addresses (release them, the gateway included, first). */
  async releasePool(poolId: string): Promise<void> {
    const space = this.spaceOf(poolId);
    const keys = this.keys[space];
    await withRetry({ attempts: this.attempts, what: `releasing pool ${poolId}` }, async () => {
      // An earlier version's registry (written again by one still running) goes first: the txn checks it is absent.
      const legacy = await this.store.get(keys.legacyRegistry());
      if (legacy) await this.migrate(space, legacy);
      const pool = await this.fetchPool(space, poolId);
      const st = await this.store.get(keys.state(poolId));
      if (!pool || !st) throw this.unknownPool(poolId);
      const state = JSON.parse(st.value) as PoolState;
      if (state.allocated > 0) {
        throw new StrandError('in-use', `pool ${poolId} (${pool.subnet}) still has ${state.allocated} allocated address(es); release them first`);
      }
      // The guard is rewritten (so cached pool lists go stale) but not
      // checked: a release cannot make two pools overlap.
      await this.store.txn(
        [
          { key: keys.pool(poolId), present: true },
          { key: keys.state(poolId), modRevision: st.modRevision },
          { key: keys.legacyRegistry(), absent: true },
        ],
        [
          { op: 'delete', key: keys.pool(poolId) },
          { op: 'delete', key: keys.state(poolId) },
          { op: 'put', key: keys.poolGuard(), value: `-${poolId}` },
        ],
      );
      this.poolCache.delete(poolId);
      this.subnetCache.delete(poolId);
      this.poolSets.delete(space);
    });
  }

  /** The pool with this id; 'not-found' if there is none. */
  async getPool(poolId: string): Promise<Pool> {
    const space = this.spaceOf(poolId);
    const pool = await this.fetchPool(space, poolId);
    if (!pool) throw this.unknownPool(poolId);
    return pool;
  }

  /** Pools of one space, or of both (this host's local space first). */
  async listPools(space?: AddressSpace): Promise<Pool[]> {
    const spaces: AddressSpace[] = space === undefined ? ['local', 'global'] : [checkSpace(space)];
    const out: Pool[] = [];
    for (const s of spaces) out.push(...(await this.readPools(s)).pools.values());
    return out;
  }

  /** How many addresses a pool has handed out, and how many it can. */
  async usage(poolId: string): Promise<PoolUsage> {
    const { pool, state } = await this.readPool(poolId);
    return { allocated: state.state.allocated, inRange: state.state.inRange, capacity: capacity(shapeOf(pool)) };
  }

  // ---- addresses ----

  /**
   * Allocates an address: the given one ('exists' naming its holder if taken,
   * 'invalid' if outside the subnet or reserved) or the next free one after
   * the pool's cursor, wrapping around ('exhausted' naming the pool when full).
   */
  async requestAddress(poolId: string, request: AddressRequest): Promise<AddressResult> {
    const space = this.spaceOf(poolId);
    const owner = request.owner === undefined && request.gateway ? { endpointId: `gateway-${poolId}` } : checkOwner(request.owner);
    const wanted = request.address === undefined ? undefined : parseIp(request.address, 'address');
    const result = (pool: Pool, v: bigint): AddressResult => {
      const subnet = parseCidr(pool.subnet);
      const address = formatIp({ family: subnet.family, value: v });
      const r: AddressResult = { poolId, address, cidr: `${address}/${subnet.prefix}` };
      if (pool.gateway !== undefined) r.gateway = pool.gateway;
      return r;
    };
    return withRetry({ attempts: this.attempts, what: `allocating in pool ${poolId}` }, async () => {
      const { pool, state } = await this.readPool(poolId);
      const shape = shapeOf(pool);
      if (request.gateway && pool.gateway !== undefined) {
        if (wanted !== undefined && formatIp(wanted) !== pool.gateway) {
          throw new StrandError('invalid', `pool ${poolId} has gateway ${pool.gateway}, not ${formatIp(wanted)}`);
        }
        return result(pool, parseIp(pool.gateway).value);
      }
      if (wanted !== undefined) {
        this.checkWanted(pool, shape, wanted.value, wanted.family, request.strictRange ?? false);
        const v = wanted.value;
        const held = await this.store.get(this.keys[space].addr(poolId, ipHex(wanted)));
        if (held) {
          const a = JSON.parse(held.value) as Allocation;
          throw new StrandError('exists', `address ${formatIp(wanted)} in pool ${poolId} is already allocated to ${describeOwner(a.owner)}`);
        }
        await this.commitAllocation(space, pool, shape, state, v, owner, request.gateway ?? false, false);
        return result(pool, v);
      }
      const cap = capacity(shape);
      if (BigInt(state.state.inRange) >= cap) {
        throw new StrandError('exhausted', `pool ${poolId} (${describeRange(pool)}) is exhausted: all ${cap} addresses are allocated`);
      }
      const cursor = state.state.cursor === '' ? undefined : ipFromHex(state.state.cursor).value;
      let candidate = nextCandidate(shape, cursor);
      // Optimistic: the address after the cursor is free unless the cursor has
      // wrapped into taken addresses or someone asked for it by name. A failed
      // txn with the state key unchanged means the address was taken; then
      // look for the next free one a block at a time and try again.
      for (;;) {
        try {
          await this.commitAllocation(space, pool, shape, state, candidate, owner, request.gateway ?? false, true);
          return result(pool, candidate);
        } catch (err) {
          if (!isStrandError(err, 'conflict')) throw err;
          const now = await this.store.get(this.keys[space].state(poolId));
          if (!now || now.modRevision !== state.kv.modRevision) throw err;
          candidate = await this.findFree(space, poolId, shape, candidate);
        }
      }
    });
  }

  /** Releases one address; 'not-found' naming it if it is not allocated (so releasing twice fails). */
  async releaseAddress(poolId: string, address: string): Promise<Allocation> {
    const space = this.spaceOf(poolId);
    const ip = parseIp(address, 'address');
    return withRetry({ attempts: this.attempts, what: `releasing ${address} in pool ${poolId}` }, async () => {
      const { pool, state } = await this.readPool(poolId);
      const kv = await this.store.get(this.keys[space].addr(poolId, ipHex(ip)));
      if (!kv) {
        const reserved = this.reservedName(pool, ip.value, ip.family);
        if (reserved) {
          throw new StrandError('invalid', `address ${formatIp(ip)} is ${reserved} of pool ${poolId}, reserved with the pool; release the pool instead`);
        }
        throw new StrandError('not-found', `address ${formatIp(ip)} is not allocated in pool ${poolId} (${pool.subnet})`);
      }
      return this.commitRelease(space, pool, state, kv);
    });
  }

  /**
   * Releases every address held by an owner, in both spaces: by (id, ifName)
   * when ifName is given, else every interface of that id. Idempotent, for
   * CNI DEL: releasing what is already gone returns an empty list.
   */
  async releaseByOwner(owner: Owner): Promise<Allocation[]> {
    const o = checkOwner(owner);
    const released: Allocation[] = [];
    for (const space of ['local', 'global'] as const) {
      const keys = this.keys[space];
      const prefix = keys.owners(o);
      for (const idx of await this.store.list(prefix)) {
        // The key ends in <poolId>/<hex>.
        const [poolId, hex] = idx.key.split('/').slice(-2) as [string, string];
        const a = await this.releaseIfHeld(space, poolId, hex, (held) => sameOwner(held.owner, o));
        if (a) released.push(a);
      }
    }
    return released;
  }

  /** The allocation holding an address of a pool, if any (one read). */
  async allocationAt(poolId: string, address: string): Promise<Allocation | undefined> {
    const space = this.spaceOf(poolId);
    const kv = await this.store.get(this.keys[space].addr(poolId, ipHex(parseIp(address, 'address'))));
    return kv ? (JSON.parse(kv.value) as Allocation) : undefined;
  }

  /**
   * Releases an address if it is held and `accept` agrees with its holder,
   * in the same transaction as `guard` (conditions on other keys, such as
   * "that host is still gone"); undefined when it was not held, not
   * accepted, or the guard no longer holds.
   */
  async releaseIf(poolId: string, address: string, accept: (held: Allocation) => boolean, guard: TxnCheck[] = []): Promise<Allocation | undefined> {
    const space = this.spaceOf(poolId);
    const hex = ipHex(parseIp(address, 'address'));
    const guarded = async (): Promise<boolean> => {
      for (const g of guard) {
        const kv = await this.store.get(g.key);
        const ok = 'absent' in g ? !kv : 'present' in g ? !!kv : (kv?.modRevision ?? 0) === g.modRevision;
        if (!ok) return false;
      }
      return true;
    };
    // The guard is read before each attempt, so one that fails ends the retries at once.
    return this.releaseIfHeld(space, poolId, hex, (held) => accept(held), guard, guarded);
  }

  /** Every allocation in a pool, in address order (this lists the whole pool; for diagnosis and GC, not the hot path). */
  async listAllocations(poolId: string): Promise<Allocation[]> {
    const space = this.spaceOf(poolId);
    await this.readPool(poolId);
    return (await this.store.list(this.keys[space].addrs(poolId))).map((kv) => JSON.parse(kv.value) as Allocation);
  }

  /**
   * Releases allocations no live attachment owns, in all pools of both
   * spaces. Only this host's allocations are judged unless `allHosts`; gateway
   * allocations are left to their pool. Allocations made after GC starts are
   * skipped, and each release is a CAS on the allocation read, so GC cannot
   * free an address re-allocated under it.
   */
  async gc(isLive: (owner: Owner) => boolean | Promise<boolean>, options: { allHosts?: boolean } = {}): Promise<Allocation[]> {
    const startedAt = await this.store.revision();
    const released: Allocation[] = [];
    for (const pool of await this.listPools()) {
      const keys = this.keys[pool.space];
      for (const kv of await this.store.list(keys.addrs(pool.id))) {
        if (kv.modRevision > startedAt) continue;
        const a = JSON.parse(kv.value) as Allocation;
        if (a.gateway || (!options.allHosts && a.host !== this.hostId)) continue;
        if (await isLive(a.owner)) continue;
        const hex = kv.key.slice(keys.addrs(pool.id).length);
        const r = await this.releaseIfHeld(pool.space, pool.id, hex, (_held, now) => now.modRevision === kv.modRevision);
        if (r) released.push(r);
      }
    }
    return released;
  }

  // ---- internals ----

  private spaceOf(poolId: string): AddressSpace {
    if (typeof poolId !== 'string' || !POOL_ID.test(poolId)) throw this.unknownPool(poolId);
    return poolId.startsWith('global-') ? 'global' : 'local';
  }

  private unknownPool(poolId: string): StrandError {
    return new StrandError('not-found', `unknown pool id ${JSON.stringify(poolId)}`);
  }

  private async routeCidrs(): Promise<Cidr[]> {
    const out: Cidr[] = [];
    for (const r of await this.hostRoutes()) {
      const c = parseCidr(r, { lenient: true, what: 'host route' });
      // A default route overlaps everything; Docker ignores it too.
      if (c.prefix > 0) out.push(c);
    }
    return out;
  }

  /**
   * Every pool of a space and the guard revision a creation must CAS. The
   * guard is read first, so a pool created after the list changes it. A
   * registry key left by an earlier version is migrated first.
   */
  private async readPools(space: AddressSpace): Promise<PoolSet> {
    const keys = this.keys[space];
    return withRetry({ attempts: this.attempts, what: `reading the pools of the ${space} space` }, async () => {
      for (;;) {
        const guard = (await this.store.get(keys.poolGuard()))?.modRevision ?? 0;
        const cached = this.poolSets.get(space);
        // (An earlier version still running writes the registry key, not the guard.)
        if (cached && guard !== 0 && cached.guard === guard && !(await this.store.get(keys.legacyRegistry()))) return cached;
        // One list: the legacy registry key and every pools/<id> key.
        const listed = await this.store.list(keys.legacyRegistry());
        const legacy = listed.find((kv) => kv.key === keys.legacyRegistry());
        if (legacy) {
          await this.migrate(space, legacy);
          continue;
        }
        const pools = new Map<string, Pool>();
        for (const kv of listed) {
          const id = kv.key.slice(keys.pools().length);
          let pool = this.poolCache.get(id);
          if (!pool) {
            pool = JSON.parse(kv.value) as Pool;
            this.poolCache.set(id, pool);
          }
          pools.set(id, pool);
        }
        const set = { pools, guard };
        this.poolSets.set(space, set);
        return set;
      }
    });
  }

  /**
   * Moves the pools of an earlier version's registry key into pool keys, in
   * batches; each batch is one transaction that CASes the registry and
   * rewrites it with the pools still to move (deletes it with the last), so
   * every pool is in exactly one of the two places at every revision.
   * Throws 'conflict' if another process changed the registry meanwhile.
   */
  private async migrate(space: AddressSpace, legacy: KeyValue): Promise<void> {
    const keys = this.keys[space];
    let entries: Array<[string, Pool]>;
    try {
      entries = Object.entries((JSON.parse(legacy.value) as LegacyRegistry).pools ?? {});
    } catch (err) {
      throw new StrandError('internal', `${legacy.key} (the pool registry of an earlier version) is not JSON; move it away`, { cause: err });
    }
    let revision = legacy.modRevision;
    for (let i = 0; ; i += MIGRATE_BATCH) {
      const batch = entries.slice(i, i + MIGRATE_BATCH);
      const rest = entries.slice(i + MIGRATE_BATCH);
      const ops: TxnOp[] = batch.map(([id, pool]) => ({ op: 'put', key: keys.pool(id), value: JSON.stringify(pool) }));
      ops.push(
        rest.length > 0
          ? { op: 'put', key: keys.legacyRegistry(), value: JSON.stringify({ pools: Object.fromEntries(rest) }) }
          : { op: 'delete', key: keys.legacyRegistry() },
        { op: 'put', key: keys.poolGuard(), value: 'migrated' },
      );
      revision = (await this.store.txn([{ key: keys.legacyRegistry(), modRevision: revision }], ops)).revision;
      if (rest.length === 0) return;
    }
  }

  /**
   * One pool by id: its key, else (a registry of an earlier version not
   * migrated yet) every pool of the space, which migrates them.
   */
  private async fetchPool(space: AddressSpace, poolId: string): Promise<Pool | undefined> {
    const kv = await this.store.get(this.keys[space].pool(poolId));
    if (kv) return JSON.parse(kv.value) as Pool;
    return (await this.readPools(space)).pools.get(poolId);
  }

  private subnetOf(pool: Pool): Cidr {
    let c = this.subnetCache.get(pool.id);
    if (!c) {
      c = parseCidr(pool.subnet);
      this.subnetCache.set(pool.id, c);
    }
    return c;
  }

  private async readPool(poolId: string): Promise<{ pool: Pool; state: { kv: KeyValue; state: PoolState } }> {
    const space = this.spaceOf(poolId);
    const kv = await this.store.get(this.keys[space].state(poolId));
    if (!kv) {
      this.poolCache.delete(poolId);
      throw this.unknownPool(poolId);
    }
    let pool = this.poolCache.get(poolId);
    if (!pool) {
      pool = await this.fetchPool(space, poolId);
      if (!pool) throw this.unknownPool(poolId);
      this.poolCache.set(poolId, pool);
    }
    return { pool, state: { kv, state: JSON.parse(kv.value) as PoolState } };
  }

  private reservedName(pool: Pool, v: bigint, family: number): string | undefined {
    const text = formatIp({ family: family as 4 | 6, value: v });
    if (pool.gateway === text) return 'the gateway';
    const aux = Object.entries(pool.auxAddresses).find(([, a]) => a === text);
    return aux ? `auxiliary address ${JSON.stringify(aux[0])}` : undefined;
  }

  private checkWanted(pool: Pool, shape: PoolShape, v: bigint, family: number, strictRange: boolean): void {
    const text = formatIp({ family: family as 4 | 6, value: v });
    if (!contains(shape.subnet, { family: family as 4 | 6, value: v })) {
      throw new StrandError('invalid', `address ${text} is outside pool ${pool.id} (${pool.subnet})`);
    }
    if (isUnusable(shape.subnet, v)) {
      const which = v === shape.subnet.base ? 'network' : 'broadcast';
      throw new StrandError('invalid', `address ${text} is the ${which} address of pool ${pool.id} (${pool.subnet})`);
    }
    const reserved = this.reservedName(pool, v, family);
    if (reserved) throw new StrandError('exists', `address ${text} is ${reserved} of pool ${pool.id}, reserved`);
    if (strictRange && !inRange(shape, v)) {
      throw new StrandError('invalid', `address ${text} is outside the ip range ${describeRange(pool)} of pool ${pool.id}`);
    }
  }

  // One transaction: the address key must be absent and the state key as read.
  private async commitAllocation(
    space: AddressSpace,
    pool: Pool,
    shape: PoolShape,
    read: { kv: KeyValue; state: PoolState },
    v: bigint,
    owner: Owner,
    gateway: boolean,
    moveCursor: boolean,
  ): Promise<void> {
    const keys = this.keys[space];
    const ip = { family: shape.subnet.family, value: v };
    const hex = ipHex(ip);
    const state: PoolState = {
      cursor: moveCursor ? hex : read.state.cursor,
      allocated: read.state.allocated + 1,
      inRange: read.state.inRange + (inRange(shape, v) ? 1 : 0),
    };
    const alloc: Allocation = { poolId: pool.id, address: formatIp(ip), owner, host: this.hostId };
    if (gateway) alloc.gateway = true;
    await this.store.txn(
      [
        { key: keys.state(pool.id), modRevision: read.kv.modRevision },
        { key: keys.addr(pool.id, hex), absent: true },
      ],
      [
        { op: 'put', key: keys.addr(pool.id, hex), value: JSON.stringify(alloc) },
        { op: 'put', key: keys.ownerAddr(owner, pool.id, hex), value: alloc.address },
        { op: 'put', key: keys.state(pool.id), value: JSON.stringify(state) },
      ],
    );
  }

  // One transaction: the allocation and the state key both as read.
  private async commitRelease(space: AddressSpace, pool: Pool, read: { kv: KeyValue; state: PoolState }, kv: KeyValue, guard: TxnCheck[] = []): Promise<Allocation> {
    const keys = this.keys[space];
    const a = JSON.parse(kv.value) as Allocation;
    const hex = kv.key.slice(keys.addrs(pool.id).length);
    const shape = shapeOf(pool);
    const state: PoolState = {
      cursor: read.state.cursor,
      allocated: read.state.allocated - 1,
      inRange: read.state.inRange - (inRange(shape, ipFromHex(hex).value) ? 1 : 0),
    };
    const ops: TxnOp[] = [
      { op: 'delete', key: kv.key },
      { op: 'delete', key: keys.ownerAddr(a.owner, pool.id, hex) },
      { op: 'put', key: keys.state(pool.id), value: JSON.stringify(state) },
    ];
    await this.store.txn(
      [
        { key: keys.state(pool.id), modRevision: read.kv.modRevision },
        { key: kv.key, modRevision: kv.modRevision },
        ...guard,
      ],
      ops,
    );
    return a;
  }

  // Releases an allocation if it still exists and `accept` agrees; undefined if it is gone.
  private async releaseIfHeld(
    space: AddressSpace,
    poolId: string,
    hex: string,
    accept: (held: Allocation, kv: KeyValue) => boolean,
    guard: TxnCheck[] = [],
    guarded: () => Promise<boolean> = async () => true,
  ): Promise<Allocation | undefined> {
    return withRetry({ attempts: this.attempts, what: `releasing an address in pool ${poolId}` }, async () => {
      if (!(await guarded())) return undefined;
      let read;
      try {
        read = await this.readPool(poolId);
      } catch (err) {
        if (isStrandError(err, 'not-found')) return undefined;
        throw err;
      }
      const kv = await this.store.get(this.keys[space].addr(poolId, hex));
      if (!kv || !accept(JSON.parse(kv.value) as Allocation, kv)) return undefined;
      return this.commitRelease(space, read.pool, read.state, kv, guard);
    });
  }

  // Next free candidate after `taken` (itself taken), listing one aligned
  // block of the address keys at a time; wraps around the range.
  private async findFree(space: AddressSpace, poolId: string, shape: PoolShape, taken: bigint): Promise<bigint> {
    const keys = this.keys[space];
    let v = nextCandidate(shape, taken);
    // Enough blocks to go round the range once, plus the partial first one.
    const maxBlocks = ((shape.last - shape.first + 1n) >> BigInt(BLOCK_BITS)) + 2n;
    for (let i = 0n; i <= maxBlocks; i++) {
      const block = blockOf(shape, v, BLOCK_BITS);
      const prefixHex = ipHex({ family: shape.subnet.family, value: block.start }).slice(0, -BLOCK_BITS / 4);
      const listed = await this.store.list(keys.addrs(poolId) + prefixHex);
      const held = new Set(listed.map((kv) => ipFromHex(kv.key.slice(keys.addrs(poolId).length)).value));
      const free = firstFreeFrom(shape, v, block.end, held);
      if (free !== undefined) return free;
      v = nextCandidate(shape, block.end);
    }
    throw new StrandError('exhausted', `pool ${poolId} has no free address left`);
  }
}

/** "10.0.0.128/25", "10.0.0.10-10.0.0.20" or the subnet. */
function describeRange(pool: Pool): string {
  if (pool.ipRange !== undefined) return pool.ipRange;
  if (pool.rangeStart === undefined && pool.rangeEnd === undefined) return pool.subnet;
  const { subnet, first, last } = shapeOf(pool);
  return `${formatIp({ family: subnet.family, value: first })}-${formatIp({ family: subnet.family, value: last })}`;
}

function sameOwner(a: Owner, b: Owner): boolean {
  const id = (o: Owner) => (o.containerId !== undefined ? `c${o.containerId}` : `e${o.endpointId}`);
  return id(a) === id(b) && (b.ifName === undefined || (a.ifName ?? '') === b.ifName);
}
