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

/**
 * `value` as a C string literal, quotes included, that compiles to exactly its
 * UTF-8 bytes: printable ASCII stays, except `"`, `\\` and `?` (trigraphs); every
 * other byte is a three-digit octal escape, so no quote, backslash or newline in
 * a path can end the literal or rewrite the front's source. A NUL byte would cut
 * the C string short, so it is refused; `what` names the value in that error.
 */
export function cStringLiteral(value: string, what: string): string {
  if (value.includes('\0')) throw new StrandError('invalid', `${what} ${JSON.stringify(value)} holds a NUL byte; a C string cannot carry it: use a path without one`);
  let out = '"';
  for (const byte of Buffer.from(value, 'utf8')) {
    const printable = byte >= 0x20 && byte <= 0x7e && byte !== 0x22 && byte !== 0x5c && byte !== 0x3f;
    out += printable ? String.fromCharCode(byte) : `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return out + '"';
}

/** The -D arguments (passed as argv, no shell) that give the front its plugin name, Node and fallback bundle. */
export function shimDefines(name: string, nodePath: string, fallback: string): string[] {
  return [
    `-DPLUGIN_NAME=${cStringLiteral(name, 'the plugin name')}`,
    `-DNODE_PATH=${cStringLiteral(nodePath, 'the Node executable path')}`,
    `-DFALLBACK_PATH=${cStringLiteral(fallback, 'the plugin bundle path (under --dir)')}`,
  ];
}

/** Compiles the front for plugin `name` to `out`; `fallback` is the Node bundle it runs without a daemon. */
export function buildShim(cc: string, source: string, name: string, fallback: string, out: string): void {
  const tmp = `${out}.tmp-${process.pid}`;
  const defines = shimDefines(name, process.execPath, fallback);
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
    const entry = Object.hasOwn(PLUGINS, name) ? PLUGINS[name] : undefined;
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
