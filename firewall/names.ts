// Names strand gives its chains and the comment tags it puts on the rules it
// adds to chains it does not own. Chain names are derived from ids, so they
// are stable and findable; the tags carry the full id for inventory().
import { createHash } from 'node:crypto';
import { StrandError } from '../common/errors.js';

/** Every chain strand makes starts with this; nothing else may. */
export const CHAIN_PREFIX = 'STRAND-';
/** Every comment strand puts on a rule starts with this. */
export const TAG_PREFIX = 'strand:';

export const BASE = {
  forward: 'STRAND-FORWARD',
  isolation: 'STRAND-ISOLATION',
  dnat: 'STRAND-DNAT',
  postrouting: 'STRAND-POSTROUTING',
} as const;
export const BASE_TAG = 'strand:base';

/** iptables allows 28 characters (XT_EXTENSION_MAXNAMELEN - 1). */
export const MAX_CHAIN = 28;
const KEY_MAX = MAX_CHAIN - 'STRAND-X-'.length;

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkId(id: unknown, what: string): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new StrandError('invalid', `invalid ${what} "${String(id)}": use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
  return id;
}

/** The id itself when it fits, else a prefix of it plus a hash of the whole. */
export function chainKey(id: string): string {
  if (id.length <= KEY_MAX) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${id.slice(0, KEY_MAX - 9)}-${hash}`;
}

/** Filter chain of a network: everything forwarded to or from its bridge. */
export const networkFilterChain = (id: string): string => `STRAND-N-${chainKey(id)}`;
/** Nat chain of a network: outbound masquerade, localhost and hairpin NAT. */
export const networkNatChain = (id: string): string => `STRAND-M-${chainKey(id)}`;
/** Nat chain of an endpoint: the DNAT rules of its published ports. */
export const endpointNatChain = (id: string): string => `STRAND-P-${chainKey(id)}`;

export const networkTag = (id: string): string => `strand:n:${id}`;
export const endpointTag = (id: string): string => `strand:e:${id}`;
