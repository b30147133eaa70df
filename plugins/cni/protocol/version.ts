// Which CNI spec versions strand speaks and how they compare. Versions are
// compared numerically (0.10.0 > 0.4.0), as libcni does.
import { CNI_VERSIONS, type CniVersion } from './types.js';

export const LATEST: CniVersion = CNI_VERSIONS[0];

export function isSupported(v: unknown): v is CniVersion {
  return typeof v === 'string' && (CNI_VERSIONS as readonly string[]).includes(v);
}

/** Parses "a.b.c" into numbers; undefined when it is not a semver triple. */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** <0, 0, >0 like a sort comparator; unparsable versions sort lowest. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a) ?? [-1, 0, 0];
  const pb = parseVersion(b) ?? [-1, 0, 0];
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

export function atLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/**
 * libcni's choice for a conflist: the highest of cniVersion and cniVersions
 * that does not exceed the runtime's own level.
 */
export function negotiateVersion(cniVersion: string | undefined, cniVersions: readonly string[] | undefined, maxLevel: string = LATEST): string {
  const all = [cniVersion ?? '0.1.0', ...(cniVersions ?? [])].filter((v) => compareVersions(v, maxLevel) <= 0);
  if (all.length === 0) return cniVersion ?? '0.1.0';
  return all.reduce((best, v) => (compareVersions(v, best) > 0 ? v : best));
}
