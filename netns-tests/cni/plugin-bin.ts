// A CNI_PATH for tests: strand's plugins as `strand cni install` writes them
// and Debian's reference plugins, each behind a wrapper that runs it inside
// the test's "host" namespace, so no test touches the machine's own tables.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installPlugins } from '../../plugins/cni/install.js';
import type { TestBed } from '../harness.js';

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
 * and run directory of the test's own; removed when the test ends.
 */
export async function pluginPath(bed: TestBed, host: string): Promise<{ path: string[]; store: string }> {
  const strand = await strandPluginDir();
  const dir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-path-')));
  const store = `local://${join(dir, 'store')}`;
  const wrap = (name: string, target: string): void => {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\nexport STRAND_STORE=${store} STRAND_RUN_DIR=${join(dir, 'run')}\nexec nsenter --net=/run/netns/${host} ${target}\n`);
    chmodSync(file, 0o755);
  };
  for (const name of ['strand-bridge', 'strand-macvlan', 'strand-ipam']) wrap(name, join(strand, name));
  for (const name of REFERENCE) wrap(name, join(REFERENCE_DIR, name));
  return { path: [dir], store };
}
