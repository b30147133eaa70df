// A CNI_PATH for tests: strand's plugins as `strand cni install` writes them
// and Debian's reference plugins, each behind a wrapper that runs it inside
// the test's "host" namespace, so no test touches the machine's own tables.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installPlugins } from '../../../plugins/cni/install.js';
import type { TestBed } from '../../../test/support/harness.js';
import { strandBin } from '../../../test/support/paths.js';

export const REFERENCE_DIR = '/usr/lib/cni';
const REFERENCE = ['bridge', 'host-local', 'macvlan', 'portmap', 'tuning', 'bandwidth', 'firewall', 'loopback'];

let installed: Promise<string> | undefined;

/** strand's bundled plugins, built once per test run and removed when the run ends. */
export function strandPluginDir(): Promise<string> {
  if (!installed) {
    const dir = mkdtempSync(join(tmpdir(), 'strand-cni-bin-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    installed = installPlugins(dir).then(() => dir);
  }
  return installed;
}

/**
 * A bin dir whose plugins all run inside netns `host`, strand's with a store
 * and run directory of the test's own; removed when the test ends. With
 * `daemon`, a `strand daemon` serves strand's plugins there (the installed
 * front hands it every verb); without, each verb is a Node process.
 */
export async function pluginPath(bed: TestBed, host: string, options: { daemon?: boolean; daemonArgs?: string[] } = {}): Promise<{ path: string[]; store: string }> {
  const strand = await strandPluginDir();
  const dir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-path-')));
  const store = `local://${join(dir, 'store')}`;
  const env = { STRAND_STORE: store, STRAND_RUN_DIR: join(dir, 'run') };
  // With a daemon, a front that cannot reach it fails instead of quietly doing the work itself.
  const require = options.daemon ? ' STRAND_CNI_REQUIRE_DAEMON=1' : '';
  const wrap = (name: string, target: string): void => {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\nexport STRAND_STORE=${env.STRAND_STORE} STRAND_RUN_DIR=${env.STRAND_RUN_DIR}${require}\nexec nsenter --net=/run/netns/${host} ${target}\n`);
    chmodSync(file, 0o755);
  };
  for (const name of ['strand-bridge', 'strand-macvlan', 'strand-ipam']) wrap(name, join(strand, name));
  for (const name of REFERENCE) wrap(name, join(REFERENCE_DIR, name));
  if (options.daemon) await startDaemon(bed, host, env, options.daemonArgs);
  return { path: [dir], store };
}

const BIN = strandBin;

/**
 * `strand daemon` inside `host`, stopped when the test ends; resolves once it
 * serves CNI requests. Unused CNI networks go at once (`--cni-linger 0`), so a
 * test sees the same state with a daemon as without, unless `args` say otherwise.
 */
export function startDaemon(bed: TestBed, host: string, env: Record<string, string>, args: string[] = ['--cni-linger', '0']): Promise<ChildProcess> {
  const child = bed.process(spawn('nsenter', [`--net=/run/netns/${host}`, process.execPath, BIN, 'daemon', '--gc-interval', '3600', '--no-docker', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('serving CNI requests')) resolve(child);
    });
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => reject(new Error(`strand daemon exited (${code}): ${out}`)));
  });
}
