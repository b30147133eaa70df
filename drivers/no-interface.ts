// What the host and none drivers share: networks with no interface, address
// or rule of their own; only the sandbox's namespace choice differs.
import { StrandError } from '../common/errors.js';
import type { Driver, JoinInfo, NetworkRecord } from '../core/types.js';

export abstract class NoInterfaceDriver implements Driver {
  abstract readonly name: string;
  readonly capabilities = { scope: 'local', connectivityScope: 'local', needsIpam: false } as const;

  validateNetwork(network: NetworkRecord): Record<string, string> {
    const keys = Object.keys(network.options);
    if (keys.length) throw new StrandError('invalid', `the ${this.name} driver takes no options (got ${keys.join(', ')})`);
    return {};
  }

  async createNetwork(): Promise<void> {}
  async deleteNetwork(): Promise<void> {}
  async createEndpoint(): Promise<Record<string, string>> {
    return {};
  }
  async deleteEndpoint(): Promise<void> {}
  async join(): Promise<JoinInfo> {
    return { srcName: '', inSandbox: true, routes: [], noDefaultRoute: true };
  }
  async leave(): Promise<void> {}
  async programExternalConnectivity(): Promise<void> {}
  async revokeExternalConnectivity(): Promise<void> {}
  async restoreNetwork(): Promise<void> {}
}
