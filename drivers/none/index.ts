// The none driver: the sandbox keeps its own namespace with loopback only.
import { NoInterfaceDriver } from '../no-interface.js';

export class NoneDriver extends NoInterfaceDriver {
  readonly name = 'none';
}
