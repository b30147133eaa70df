// What a plugin verb works with: netlink on the host, the container's
// namespace and netlink inside it, opened together and always closed.
import { Netlink, openNetns, type NetNs } from '../../../netlink/index.js';
import { CniError, CNI_CODES } from './types.js';

export interface Handles {
  host: Netlink;
  ns: NetNs;
  inside: Netlink;
}

/** The container's namespace, or code 4 naming the path when it is missing or not a namespace. */
export function openContainerNs(path: string): NetNs {
  if (!path) throw new CniError(CNI_CODES.invalidEnv, 'CNI_NETNS is required for this command');
  try {
    return openNetns(path);
  } catch (err) {
    throw new CniError(CNI_CODES.invalidEnv, `CNI_NETNS ${path}: ${(err as Error).message}`);
  }
}

export async function withHandles<T>(netns: string, fn: (h: Handles) => Promise<T>): Promise<T> {
  const ns = openContainerNs(netns);
  const host = Netlink.open();
  const inside = Netlink.open(ns);
  try {
    return await fn({ host, ns, inside });
  } finally {
    inside.close();
    host.close();
    ns.close();
  }
}
