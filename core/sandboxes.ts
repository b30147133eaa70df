// Sandboxes: a network namespace of strand's (or the host's, or another
// sandbox's), its hosts/resolv.conf/hostname files, and the process that runs
// in it. Endpoints are attached and detached by core/endpoints.ts; removing a
// sandbox with endpoints is the Controller's to compose.
import { hostname } from 'node:os';
import { StrandError } from '../common/errors.js';
import { Netlink, createNetns, deleteNetns, openNetns, currentNetns, type NetNs } from '../netlink/index.js';
import type { CoreContext } from './context.js';
import { Undo } from './undo.js';
import { newId, sandboxNetnsName, shortId, validateName } from './ids.js';
import { removeSandboxFiles, writeSandboxFiles, writeSandboxHosts } from './sandbox-files.js';
import { removeInterfaceIn } from './sandbox-net.js';
import { processAlive, processStartTime, stopProcess } from './process-info.js';
import type { EndpointRecord, SandboxRecord } from './types.js';

export interface SandboxRequest {
  name?: string;
  /** Share the network namespace of another sandbox (`--network container:NAME`). */
  shareWith?: string;
  /** Use the host's network namespace (`--network host`). */
  host?: boolean;
  hostname?: string;
  dns?: { servers?: string[]; search?: string[]; options?: string[] };
  extraHosts?: { name: string; ip: string }[];
  /** A foreground run's process: gc removes the sandbox once it is gone. */
  ownerPid?: number;
}

export class Sandboxes {
  constructor(private readonly ctx: CoreContext) {}

  async create(req: SandboxRequest): Promise<SandboxRecord> {
    const { records, runDir } = this.ctx;
    const id = newId();
    const name = req.name ?? shortId(id);
    validateName(name, 'sandbox');
    if (await records.sandboxes.sandboxNameTaken(name)) throw new StrandError('exists', `a sandbox named "${name}" already exists; choose another name or "strand rm ${name}"`);
    let kind: SandboxRecord['kind'] = 'netns';
    let netnsPath = `/run/netns/${sandboxNetnsName(id)}`;
    let sharesWith: string | undefined;
    if (req.host) {
      kind = 'host';
      netnsPath = '';
    } else if (req.shareWith) {
      const other = await this.find(req.shareWith);
      if (other.kind === 'container') throw new StrandError('invalid', `sandbox "${other.name}" itself shares another's namespace; name that one instead`);
      kind = 'container';
      netnsPath = other.netnsPath;
      sharesWith = other.id;
    }
    const record: SandboxRecord = {
      id,
      name,
      kind,
      netnsPath,
      ...(sharesWith ? { sharesWith } : {}),
      hostname: req.hostname ?? (kind === 'host' ? hostname() : shortId(id)),
      dns: { servers: req.dns?.servers ?? [], search: req.dns?.search ?? [], options: req.dns?.options ?? [] },
      extraHosts: req.extraHosts ?? [],
      ...(req.ownerPid ? { ownerPid: req.ownerPid, ownerStart: processStartTime(req.ownerPid) ?? '' } : {}),
      created: new Date().toISOString(),
    };
    return new Undo().run(async (undo) => {
      if (kind === 'netns') {
        const ns = createNetns(sandboxNetnsName(id));
        undo.push('remove the namespace', () => deleteNetns(sandboxNetnsName(id)));
        const nl = Netlink.open(ns);
        try {
          nl.links.set('lo', { up: true });
        } finally {
          nl.close();
          ns.close();
        }
      }
      writeSandboxFiles(runDir, record, []);
      undo.push('remove sandbox files', () => removeSandboxFiles(runDir, id));
      await records.sandboxes.createSandbox(record);
      return record;
    });
  }

  async find(ref: string): Promise<SandboxRecord> {
    const sb = await this.ctx.records.sandboxes.findSandbox(ref);
    if (!sb) throw new StrandError('not-found', `sandbox "${ref}" not found; "strand ps" lists them`);
    return sb;
  }

  byId(id: string): Promise<SandboxRecord | undefined> {
    return this.ctx.records.sandboxes.getSandbox(id);
  }

  async list(): Promise<SandboxRecord[]> {
    return (await this.ctx.records.sandboxes.listSandboxes()).sort((a, b) => a.created.localeCompare(b.created));
  }

  endpointsIn(sandbox: SandboxRecord): Promise<EndpointRecord[]> {
    return this.ctx.records.endpoints.endpointsOfSandbox(sandbox.id);
  }

  /** Opens the sandbox's network namespace (the controller's own for host sandboxes). */
  openNs(sandbox: SandboxRecord): NetNs {
    return sandbox.netnsPath ? openNetns(sandbox.netnsPath) : currentNetns();
  }

  /**
   * Takes an interface out of a sandbox of strand's, if the sandbox still has
   * its namespace: a veth would go with its host end anyway, but a macvlan
   * lives only inside the sandbox.
   */
  removeInterface(sandbox: SandboxRecord | undefined, ifName: string): void {
    if (sandbox?.kind === 'netns') removeInterfaceIn(sandbox.netnsPath, ifName);
  }

  async setPid(sandbox: SandboxRecord, pid: number): Promise<void> {
    sandbox.pid = pid;
    const start = processStartTime(pid);
    if (start) sandbox.pidStart = start;
    await this.ctx.records.sandboxes.updateSandbox(sandbox);
  }

  /** Whether the sandbox's first process still runs. */
  running(sandbox: SandboxRecord): boolean {
    return sandbox.pid !== undefined && processAlive(sandbox.pid, sandbox.pidStart);
  }

  /** Stops the sandbox's first process (TERM, then KILL after the grace period). */
  async stop(sandbox: SandboxRecord, graceMs?: number): Promise<void> {
    if (sandbox.pid !== undefined) await stopProcess(sandbox.pid, sandbox.pidStart, graceMs);
  }

  /** Refused while another sandbox shares this one's namespace. */
  async checkRemovable(sb: SandboxRecord): Promise<void> {
    const sharers = (await this.ctx.records.sandboxes.listSandboxes()).filter((s) => s.sharesWith === sb.id);
    if (sharers.length) {
      throw new StrandError('in-use', `sandbox "${sb.name}" shares its network namespace with ${sharers.map((s) => s.name).join(', ')}; remove those first`);
    }
  }

  /** The namespace, the files and the record, once its endpoints are gone; succeeds for a half-removed sandbox. */
  async remove(sb: SandboxRecord): Promise<void> {
    if (sb.kind === 'netns') deleteNetns(sandboxNetnsName(sb.id));
    removeSandboxFiles(this.ctx.runDir, sb.id);
    await this.ctx.records.sandboxes.deleteSandbox(sb);
  }

  /** /etc/hosts follows the sandbox's addresses. */
  async refreshFiles(sandbox: SandboxRecord): Promise<void> {
    const addrs = (await this.endpointsIn(sandbox)).flatMap((e) => e.addresses);
    writeSandboxHosts(this.ctx.runDir, sandbox, addrs);
  }
}
