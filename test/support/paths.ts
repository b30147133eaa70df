// Where the checkout is, found from this file (compiled under dist/ or not),
// so fixtures are read from the project and never from a machine's own folders.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'strand') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no strand package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export const projectRoot = findRoot();

/** A file under test/fixtures/ of the checkout. */
export const fixture = (...parts: string[]): string => join(projectRoot, 'test', 'fixtures', ...parts);

/** The `strand` command of this checkout. */
export const strandBin = join(projectRoot, 'bin', 'strand');

/** A compiled file of this checkout, by its source path: distFile('cli', 'main.js'). */
export const distFile = (...parts: string[]): string => join(projectRoot, 'dist', ...parts);
