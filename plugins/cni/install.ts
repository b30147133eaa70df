// `strand cni install --dir DIR`: the CNI plugin executables.
//
// Each plugin is bundled into one CommonJS file (a start reads one file
// instead of resolving hundreds of modules); native and lazily loaded
// packages (koffi; the etcd and Redis clients, loaded only for those stores)
// stay outside and are required from this installation by absolute path.
//
// The executable a runtime starts is, where a C compiler is at hand, a thin
// front (shim/strand-cni-shim.c) that hands the request to a running
// `strand daemon` and falls back to the bundle when none runs: a Node start
// alone costs ~50 ms per verb, the front ~1 ms. Without a compiler, or with
// `shim: false`, the bundle itself is the executable.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StrandError } from '../../common/errors.js';

/** Plugin executable name → its entry point (compiled, next to this file). */
export const PLUGINS: Record<string, string> = {
  'strand-bridge': 'bridge/main.js',
  'strand-macvlan': 'macvlan/main.js',
  'strand-overlay': 'overlay/main.js',
  'strand-ipam': 'ipam/main.js',
};

const EXTERNAL = ['koffi', 'etcd3', 'ioredis'];
/** Where the bundles go when a front stands in front of them. */
export const BUNDLE_DIR = '.strand';

const here = dirname(fileURLToPath(import.meta.url));
const SHIM_RELATIVE = join('plugins', 'cni', 'shim', 'strand-cni-shim.c');

/** The front's C source: tsc leaves it in the source tree, above wherever the build went. */
export function shimSource(): string | undefined {
  const starts = [here, process.cwd()];
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, SHIM_RELATIVE))) return join(dir, SHIM_RELATIVE);
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

export interface InstallOptions {
  /** Plugins to install; default all. */
  names?: string[];
  /** Put the thin front before each bundle (default: when a C compiler is found). */
  shim?: boolean;
}

async function bundle(entry: string, out: string, shebang: boolean): Promise<void> {
  const require = createRequire(import.meta.url);
  const esbuild = await import('esbuild');
  // Absolute paths of this installation's copies, so the bundles work from any directory.
  const alias = Object.fromEntries(EXTERNAL.map((p) => [p, require.resolve(p)]));
  const tmp = `${out}.tmp-${process.pid}`;
  await esbuild.build({
    entryPoints: [join(here, entry)],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: tmp,
    ...(shebang ? { banner: { js: `#!${process.execPath}` } } : {}),
    external: Object.values(alias),
    alias,
    logLevel: 'error',
    minifyWhitespace: true,
  });
  chmodSync(tmp, 0o755);
  // A runtime may be executing the old file right now: replace it whole.
  renameSync(tmp, out);
}

/** The first C compiler found: cc, gcc or clang. */
export function compiler(): string | undefined {
  for (const cc of ['cc', 'gcc', 'clang']) {
    if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0) return cc;
  }
  return undefined;
}

/** Compiles the front for plugin `name` to `out`; `fallback` is the Node bundle it runs without a daemon. */
export function buildShim(cc: string, source: string, name: string, fallback: string, out: string): void {
  const tmp = `${out}.tmp-${process.pid}`;
  const defines = [`-DPLUGIN_NAME="${name}"`, `-DNODE_PATH="${process.execPath}"`, `-DFALLBACK_PATH="${fallback}"`];
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', tmp, ...defines, source], { encoding: 'utf8' });
  if (r.status !== 0) throw new StrandError('internal', `cannot build the CNI front for ${name} with ${cc}: ${r.stderr.trim()}`);
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
}

export async function installPlugins(dir: string, options: InstallOptions = {}): Promise<string[]> {
  const names = options.names ?? Object.keys(PLUGINS);
  const cc = options.shim === false ? undefined : compiler();
  if (options.shim === true && !cc) throw new StrandError('invalid', 'no C compiler (cc, gcc or clang) to build the CNI front with; install one or use --no-shim');
  const source = cc ? shimSource() : undefined;
  if (cc && !source) throw new StrandError('internal', `the CNI front's source ${SHIM_RELATIVE} is missing from this installation`);
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const name of names) {
    const entry = PLUGINS[name];
    if (!entry) throw new StrandError('invalid', `unknown CNI plugin "${name}": strand has ${Object.keys(PLUGINS).join(', ')}`);
    const out = join(dir, name);
    if (cc) {
      mkdirSync(join(dir, BUNDLE_DIR), { recursive: true });
      const fallback = join(dir, BUNDLE_DIR, `${name}.cjs`);
      await bundle(entry, fallback, false);
      buildShim(cc, source!, name, fallback, out);
    } else {
      await bundle(entry, out, true);
    }
    written.push(out);
  }
  return written;
}
