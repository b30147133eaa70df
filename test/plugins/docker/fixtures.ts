import assert from 'node:assert/strict';
// A controller on a throwaway local store with a recording fake "bridge"
// driver (the real bridge's option checks, no kernel), and a helper that
// sends a request through the real HTTP transport over a unix socket.
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../../store/index.js';
import { Controller } from '../../../core/controller.js';
import { bridgeSettings } from '../../../drivers/bridge/options.js';
import type { Driver, EndpointRecord, EndpointRequest, JoinInfo, NetworkRecord } from '../../../core/types.js';
import { servePlugin, type Handlers } from '../../../plugins/docker/http.js';
import { Records } from '../../../core/records/index.js';

export class FakeBridge implements Driver {
  readonly name = 'bridge';
  readonly capabilities = { scope: 'local', connectivityScope: 'local', needsIpam: true } as const;
  readonly calls: string[] = [];
  /** Host-side interfaces that exist, as the kernel would have them. */
  readonly links = new Set<string>();
  readonly published = new Map<string, string[]>();
  failJoin = false;

  validateNetwork(network: NetworkRecord, existing: NetworkRecord[]): Record<string, string> {
    return { ...bridgeSettings(network, existing) };
  }
  async createNetwork(n: NetworkRecord): Promise<void> {
    this.calls.push(`createNetwork ${n.id.slice(0, 12)}`);
  }
  async deleteNetwork(n: NetworkRecord): Promise<void> {
    this.calls.push(`deleteNetwork ${n.id.slice(0, 12)}`);
  }
  async createEndpoint({ network, endpoint, sandboxNs }: EndpointRequest): Promise<Record<string, string>> {
    if (sandboxNs) throw new Error('a detached endpoint has no sandbox');
    const name = `st${endpoint.id.slice(0, 12)}`;
    this.links.add(name);
    this.calls.push(`createEndpoint ${endpoint.id.slice(0, 12)} mtu=${network.driverState.mtu} mac=${endpoint.mac}`);
    return { sandboxVeth: name };
  }
  async deleteEndpoint(_n: NetworkRecord, e: EndpointRecord): Promise<void> {
    this.links.delete(`st${e.id.slice(0, 12)}`);
    this.calls.push(`deleteEndpoint ${e.id.slice(0, 12)}`);
  }
  async join({ network, endpoint }: EndpointRequest): Promise<JoinInfo> {
    if (this.failJoin) throw new Error('join failed');
    const gw = network.subnets.find((s) => s.family === 4)?.gateway;
    const gw6 = network.subnets.find((s) => s.family === 6)?.gateway;
    return { srcName: endpoint.driverState.sandboxVeth!, inSandbox: false, ...(gw ? { gateway: gw } : {}), ...(gw6 ? { gatewayV6: gw6 } : {}), routes: [], noDefaultRoute: network.internal };
  }
  async leave(): Promise<void> {}
  async programExternalConnectivity(_n: NetworkRecord, e: EndpointRecord): Promise<void> {
    this.published.set(e.id, e.ports.map((p) => `${p.hostIp || '*'}:${p.hostPort}->${p.containerPort}/${p.proto}`));
  }
  async revokeExternalConnectivity(_n: NetworkRecord, e: EndpointRecord): Promise<void> {
    this.published.delete(e.id);
  }
  async restoreNetwork(): Promise<void> {}
}

export interface Rig {
  ctl: Controller;
  /** The controller's records read straight from its store: what the tests check, apart from core's own view. */
  records: Records;
  driver: FakeBridge;
  dir: string;
  storeUrl: string;
  close(): Promise<void>;
}

export async function rig(dir = mkdtempSync(join(tmpdir(), 'strand-docker-'))): Promise<Rig> {
  const storeUrl = `local://${join(dir, 'store')}`;
  const driver = new FakeBridge();
  const store = await openStore(storeUrl);
  const ctl = new Controller({ store, drivers: [driver], hostId: 'test-host', runDir: join(dir, 'run') });
  return {
    ctl,
    records: new Records(store, 'test-host'),
    driver,
    dir,
    storeUrl,
    close: async () => {
      await ctl.close();
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface Answer {
  status: number;
  json: Record<string, unknown>;
  contentType: string;
}

/** POSTs as dockerd does: no Content-Type, an empty Host, the body followed by a newline (none at all when null). */
export function post(socket: string, path: string, body: unknown): Promise<Answer> {
  const payload = body === null || body === undefined ? '' : `${JSON.stringify(body)}\n`;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'POST', agent: false, headers: { Host: '', Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown>, contentType: String(res.headers['content-type']) });
        } catch (err) {
          reject(new Error(`${path}: answer is not JSON: ${JSON.stringify(text)} (${(err as Error).message})`));
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export async function serve(dir: string, name: string, handlers: Handlers): Promise<{ socket: string; server: Server }> {
  const socket = join(dir, `${name}.sock`);
  return { socket, server: await servePlugin(socket, handlers) };
}

/** Calls of one plugin interface (NetworkDriver, IpamDriver) with assertions on the answer. */
export function caller(socket: () => string, iface: string) {
  const call = (method: string, b: unknown) => post(socket(), `/${iface}.${method}`, b);
  return {
    call,
    /** The answer of a call that must succeed. */
    async ok(method: string, b: unknown): Promise<Record<string, unknown>> {
      const a = await call(method, b);
      assert.equal(a.status, 200, `${method}: ${JSON.stringify(a.json)}`);
      return a.json;
    },
    /** A call that must fail with HTTP 500, Err and Error alike and matching. */
    async fails(method: string, b: unknown, pattern: RegExp): Promise<void> {
      const a = await call(method, b);
      assert.equal(a.status, 500, `${method} should fail: ${JSON.stringify(a.json)}`);
      assert.match(String(a.json.Error), pattern);
      assert.equal(a.json.Err, a.json.Error);
    },
  };
}
