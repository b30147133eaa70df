// `strand cni install --dir DIR`: writes the CNI plugin executables.
import { StrandError } from '../common/errors.js';
import { list, parse, str } from './args.js';

const USAGE = `usage: strand cni install --dir DIR [--plugin NAME]...
  writes strand-bridge, strand-macvlan and strand-ipam (or the named ones) into DIR,
  for a runtime whose CNI_PATH includes DIR
`;

export async function cniCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'install') throw new StrandError('invalid', `unknown cni command "${sub ?? ''}"\n${USAGE}`);
  const p = parse(rest, { dir: { type: 'string' }, plugin: { type: 'string', multiple: true } }, USAGE);
  const dir = str(p, 'dir');
  if (!dir) throw new StrandError('invalid', `strand cni install needs --dir DIR\n${USAGE}`);
  const { installPlugins } = await import('../plugins/cni/install.js');
  const names = list(p, 'plugin');
  for (const file of await installPlugins(dir, names.length ? names : undefined)) console.log(file);
}
