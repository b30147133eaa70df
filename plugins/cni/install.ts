// `strand cni install --dir DIR`: each plugin bundled into one executable
// file, so a plugin's start reads one file instead of resolving hundreds of
// modules. Native and lazily loaded packages (koffi; the etcd and Redis
// clients, loaded only for those stores) stay outside the bundle and are
// required from this installation by absolute path.
import { chmodSync, mkdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StrandError } from '../../common/errors.js';

/** Plugin executable name → its entry point (compiled, next to this file). */
export const PLUGINS: Record<string, string> = {
  'strand-bridge': 'bridge-main.js',
  'strand-macvlan': 'macvlan-main.js',
  'strand-ipam': 'ipam-main.js',
};

const EXTERNAL = ['koffi', 'etcd3', 'ioredis'];

export async function installPlugins(dir: string, names: string[] = Object.keys(PLUGINS)): Promise<string[]> {
  const here = dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  const esbuild = await import('esbuild');
  // Absolute paths of this installation's copies, so the bundles work from any directory.
  const alias = Object.fromEntries(EXTERNAL.map((p) => [p, require.resolve(p)]));
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const name of names) {
    const entry = PLUGINS[name];
    if (!entry) throw new StrandError('invalid', `unknown CNI plugin "${name}": strand has ${Object.keys(PLUGINS).join(', ')}`);
    const out = join(dir, name);
    const tmp = `${out}.tmp-${process.pid}`;
    await esbuild.build({
      entryPoints: [join(here, entry)],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile: tmp,
      banner: { js: `#!${process.execPath}` },
      external: Object.values(alias),
      alias,
      logLevel: 'error',
      minifyWhitespace: true,
    });
    chmodSync(tmp, 0o755);
    // A runtime may be executing the old file right now: replace it whole.
    renameSync(tmp, out);
    written.push(out);
  }
  return written;
}
