// The host driver: a sandbox on the host network uses the host's own network
// namespace (the core gives such sandboxes no namespace of their own).
import { StrandError } from '../../common/errors.js';
import type { NetworkRecord } from '../../core/types.js';
import { NoInterfaceDriver } from '../no-interface.js';

export class HostDriver extends NoInterfaceDriver {
  readonly name = 'host';

  override validateNetwork(network: NetworkRecord): Record<string, string> {
    if (network.internal) throw new StrandError('invalid', 'a host network cannot be internal');
    return super.validateNetwork(network);
  }
}
