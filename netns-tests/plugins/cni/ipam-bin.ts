// A CNI_PATH for strand-ipam's tests: a launcher for the compiled strand-ipam
// entry point (whatever dir the build went to) and Debian's reference
// plugins, each run inside the test's "host" namespace so no test touches
// the machine's own links or tables. Removed when the test ends.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestBed } from '../../../test/support/harness.js';
import { distFile } from '../../../test/support/paths.js';

export const REFERENCE_DIR = '/usr/lib/cni';
const REFERENCE = ['bridge', 'macvlan', 'host-local'];
const IPAM_MAIN = distFile('plugins', 'cni', 'ipam', 'main.js');

export function ipamPluginPath(bed: TestBed, host: string): { path: string[]; store: string } {
  const dir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-ipam-bin-')));
  const store = `local://${join(dir, 'store')}`;
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), 0o755);
  };
  write('strand-ipam.mjs', `import ${JSON.stringify(IPAM_MAIN)};\n`);
  // STRAND_STORE: the default store when the config names none.
  write('strand-ipam', `#!/bin/sh\nexport STRAND_STORE=${store}\nexec nsenter --net=/run/netns/${host} ${process.execPath} ${join(dir, 'strand-ipam.mjs')}\n`);
  for (const name of REFERENCE) write(name, `#!/bin/sh\nexec nsenter --net=/run/netns/${host} ${join(REFERENCE_DIR, name)}\n`);
  return { path: [dir], store };
}
