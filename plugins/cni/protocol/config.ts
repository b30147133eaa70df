// The network configuration on stdin: decoded, its version checked against
// what strand speaks, and the keys the protocol reserves checked for type.
// Unknown keys are kept untouched, as CNI expects.
import { checkNetworkName, ID_PATTERN, checkIfName } from './env.js';
import { parseResult } from './result.js';
import { CniError, CNI_CODES, CNI_VERSIONS, type Attachment, type CniCommand, type NetConf } from './types.js';
import { atLeast, isSupported } from './version.js';

function invalid(msg: string): CniError {
  return new CniError(CNI_CODES.invalidConfig, msg);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Code 6 unless `text` is a JSON object. */
export function decodeJson(text: string, what = 'network config'): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_CODES.decode, `cannot decode ${what} on stdin: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new CniError(CNI_CODES.decode, `cannot decode ${what} on stdin: expected a JSON object, got ${Array.isArray(v) ? 'an array' : JSON.stringify(v)}`);
  return v;
}

const OBJECT_KEYS = ['ipam', 'dns', 'runtimeConfig', 'args', 'capabilities', 'prevResult'] as const;

/**
 * Decodes and checks a plugin's config for `command`: code 6 for bad JSON,
 * 1 for a version strand does not speak (a missing one means 0.1.0), 7 for
 * a bad name or a reserved key of the wrong type; prevResult is normalised
 * to the 1.1 form.
 */
export function parseNetConf(text: string, command: CniCommand): NetConf {
  const raw = decodeJson(text);
  const version = raw.cniVersion ?? '0.1.0';
  if (typeof version !== 'string') throw invalid(`invalid cniVersion ${JSON.stringify(version)}: must be a string such as "1.1.0"`);
  if (!isSupported(version)) {
    throw new CniError(CNI_CODES.incompatibleVersion, 'incompatible CNI versions', `config is "${version}", plugin supports ${JSON.stringify(CNI_VERSIONS)}`);
  }
  const name = checkNetworkName(raw.name);
  if (raw.type !== undefined && typeof raw.type !== 'string') throw invalid(`invalid "type" ${JSON.stringify(raw.type)}: must be a string`);
  for (const key of OBJECT_KEYS) {
    if (raw[key] !== undefined && !isObject(raw[key])) throw invalid(`invalid "${key}": must be an object, got ${JSON.stringify(raw[key])}`);
  }
  if (isObject(raw.ipam) && raw.ipam.type !== undefined && typeof raw.ipam.type !== 'string') {
    throw invalid(`invalid "ipam.type" ${JSON.stringify(raw.ipam.type)}: must be a string`);
  }
  if (command === 'CHECK' && !atLeast(version, '0.4.0')) {
    throw new CniError(CNI_CODES.incompatibleVersion, 'config version does not allow CHECK', `cniVersion ${version}; CHECK needs 0.4.0 or later`);
  }
  if ((command === 'GC' || command === 'STATUS') && !atLeast(version, '1.1.0')) {
    throw new CniError(CNI_CODES.incompatibleVersion, `config version does not allow ${command}`, `cniVersion ${version}; ${command} needs 1.1.0`);
  }
  const conf = { ...raw, cniVersion: version, name, type: (raw.type as string | undefined) ?? '' } as NetConf;
  if (raw.prevResult !== undefined) conf.prevResult = parseResult(raw.prevResult, { what: 'prevResult', code: CNI_CODES.invalidConfig, version });
  return conf;
}

/**
 * GC's list of attachments to keep: `cni.dev/valid-attachments`, else the
 * name the spec-v1.1.0 tag used, `cni.dev/attachments`; undefined when
 * neither is present (cnitool sends none).
 */
export function parseValidAttachments(conf: Record<string, unknown>): Attachment[] | undefined {
  const key = conf['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const list = conf[key];
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw invalid(`invalid "${key}": must be a list of {containerID, ifname}`);
  return list.map((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw invalid(`invalid "${key}"[${i}] ${JSON.stringify(a)}: needs string "containerID" and "ifname"`);
    }
    if (!ID_PATTERN.test(a.containerID)) throw invalid(`invalid "${key}"[${i}].containerID ${JSON.stringify(a.containerID)}`);
    try {
      checkIfName(a.ifname);
    } catch (err) {
      throw invalid(`invalid "${key}"[${i}].ifname: ${(err as Error).message}`);
    }
    return { containerId: a.containerID, ifName: a.ifname };
  });
}
