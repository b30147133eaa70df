// `strand cni install --dir DIR`: writes the CNI plugin executables.
import { StrandError } from '../common/errors.js';
import { flag, list, parse, str } from './args.js';

const USAGE = `usage: strand cni install --dir DIR [--plugin NAME]... [--no-shim]
  writes strand-bridge, strand-macvlan, strand-overlay and strand-ipam (or the
  named ones) into DIR, for a runtime whose CNI_PATH includes DIR. Each is a
  small native front that hands the request to a running "strand daemon"
  (falling back to doing the work itself; strand-overlay needs the daemon);
  --no-shim installs the Node plugins themselves.
`;

export async function cniCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'install') throw new StrandError('invalid', `unknown cni command "${sub ?? ''}"\n${USAGE}`);
  const p = parse(rest, { dir: { type: 'string' }, plugin: { type: 'string', multiple: true }, 'no-shim': { type: 'boolean' } }, USAGE);
  const dir = str(p, 'dir');
  if (!dir) throw new StrandError('invalid', `strand cni install needs --dir DIR\n${USAGE}`);
  const { installPlugins } = await import('../plugins/cni/install.js');
  const names = list(p, 'plugin');
  const options = { ...(names.length ? { names } : {}), ...(flag(p, 'no-shim') ? { shim: false } : {}) };
  for (const file of await installPlugins(dir, options)) console.log(file);
}
