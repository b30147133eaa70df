// CNI_ARGS ("K=V;K=V") and case-insensitive key lookup: containerd's Go
// structs have no JSON tags, so runtimeConfig keys arrive as HostPort,
// ContainerPort...; CRI-O and podman send hostPort.
import { CniError, CNI_CODES } from './types.js';

/** Parses CNI_ARGS; a pair without "=" or with an empty key is code 4 naming it. Later keys win. */
export function parseCniArgs(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === undefined || text === '') return out;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new CniError(CNI_CODES.invalidEnv, `invalid CNI_ARGS pair ${JSON.stringify(pair)}: expected KEY=VALUE`);
    }
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function formatCniArgs(args: Record<string, string> | string | undefined): string {
  if (args === undefined) return '';
  if (typeof args === 'string') return args;
  return Object.entries(args)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
}

/** Keys runtimes send that every plugin may ignore. */
const RUNTIME_ARGS = ['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'];

/**
 * As the reference plugins do: a CNI_ARGS key the plugin does not know is an
 * error (code 2, naming it) unless IgnoreUnknown is 1/true.
 */
export function checkCniArgKeys(args: Record<string, string>, known: readonly string[]): void {
  const ignore = /^(1|true)$/i.test(getCi(args, 'IgnoreUnknown') as string | undefined ?? '');
  if (ignore) return;
  for (const key of Object.keys(args)) {
    if (known.includes(key) || RUNTIME_ARGS.includes(key)) continue;
    throw new CniError(CNI_CODES.unsupportedField, `unknown CNI_ARGS key ${JSON.stringify(key)}; set IgnoreUnknown=1 to ignore it`, key);
  }
}

/** obj[key] matched exactly, else ignoring case; undefined when obj is not an object. */
export function getCi(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  const rec = obj as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(rec, key)) return rec[key];
  const lower = key.toLowerCase();
  for (const k of Object.keys(rec)) if (k.toLowerCase() === lower) return rec[k];
  return undefined;
}

/** A copy of a JSON value with every object key lower-cased, for matching whole runtimeConfig entries. */
export function lowerKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(lowerKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toLowerCase(), lowerKeys(v)]));
}

/** runtimeConfig[key] (case-insensitive), e.g. runtimeValue(conf, 'portMappings'). */
export function runtimeValue(config: { runtimeConfig?: unknown }, key: string): unknown {
  return getCi(config.runtimeConfig, key);
}
