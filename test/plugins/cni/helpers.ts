// Plumbing for the CNI unit tests: run the skel in process with a given
// environment and stdin, and read what it printed.
import { PassThrough, Readable } from 'node:stream';
import { runPlugin } from '../../../plugins/cni/protocol/skel.js';
import type { CniRequest, PluginHandlers } from '../../../plugins/cni/protocol/types.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json?: Record<string, unknown>;
}

export const ENV = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

export async function runSkel(handlers: PluginHandlers, env: Record<string, string | undefined>, stdin: string): Promise<Ran> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runPlugin(handlers, { env, stdin: Readable.from([Buffer.from(stdin)]), stdout: out, stderr: err });
  const ran: Ran = { code, stdout, stderr };
  try {
    ran.json = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    // not JSON (or empty)
  }
  return ran;
}

/** Handlers that record each call and answer ADD with a fixed two-interface result. */
export function recorder(): { handlers: PluginHandlers; calls: { verb: string; req: CniRequest }[] } {
  const calls: { verb: string; req: CniRequest }[] = [];
  const handlers: PluginHandlers = {
    add: async (req) => {
      calls.push({ verb: 'ADD', req });
      return {
        cniVersion: '1.1.0',
        interfaces: [{ name: 'br0', mac: '02:00:00:00:00:01', mtu: 1500 }, { name: req.ifName, sandbox: req.netns, mtu: 1500 }],
        ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 }, { address: 'fd00::5/64', interface: 1 }],
        routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400 }],
      };
    },
    del: async (req) => void calls.push({ verb: 'DEL', req }),
    check: async (req) => void calls.push({ verb: 'CHECK', req }),
    gc: async (req) => void calls.push({ verb: 'GC', req }),
    status: async (req) => void calls.push({ verb: 'STATUS', req }),
  };
  return { handlers, calls };
}
