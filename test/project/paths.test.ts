// No source, test, benchmark or script reads a folder that exists only on the
// machine it was written on: a fresh clone (CI, a user) must find every file
// it needs inside the checkout or in the system's own folders.
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { projectRoot } from '../support/paths.js';

/** System folders a test may name: temp and runtime dirs, kernel views, installed programs and their config. */
const SYSTEM = ['tmp', 'run', 'proc', 'sys', 'usr', 'etc', 'var', 'dev', 'bin', 'sbin', 'lib', 'lib64', 'opt'];
/** Paths that are meant not to exist (tests of "no such file"). */
const NONEXISTENT = /^\/nonexistent\//;
const SKIP = new Set(['node_modules', 'dist', '.git']);
const SCANNED = /\.(ts|sh|c|mjs|js)$/;

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (SCANNED.test(e.name)) out.push(p);
  }
  return out;
}

/** Absolute paths of two or more parts inside string literals, in any of the three quotes. */
export function absolutePaths(text: string): string[] {
  return [...text.matchAll(/['"`](\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+[^'"`\s]*)/g)].map((m) => m[1]!);
}

export function outsideMachinePath(path: string): boolean {
  const top = path.split('/')[1]!;
  return !SYSTEM.includes(top) && !NONEXISTENT.test(path);
}

describe('project: no absolute paths outside the checkout', () => {
  it('finds a home-grown absolute path in a literal, and passes system ones', () => {
    // Built from parts, so that this file itself names no such folder.
    const elsewhere = ['', 'work', 'shared', 'a.json'].join('/');
    const home = ['', 'home', 'me', 'captures'].join('/');
    assert.deepEqual(absolutePaths(`x('${elsewhere}', "/run/strand", \`/tmp/x\${d}\`, '/bytes/\${n}')`), [elsewhere, '/run/strand', '/tmp/x${d}']);
    assert.equal(outsideMachinePath(elsewhere), true);
    assert.equal(outsideMachinePath(home), true);
    assert.equal(outsideMachinePath('/run/strand/cni.sock'), false);
    assert.equal(outsideMachinePath('/usr/lib/cni'), false);
    assert.equal(outsideMachinePath('/nonexistent/program'), false);
  });

  it('every source, test, benchmark and script names only system folders or the checkout', () => {
    const found: string[] = [];
    for (const file of sources(projectRoot)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        for (const p of absolutePaths(line)) if (outsideMachinePath(p)) found.push(`${relative(projectRoot, file)}:${i + 1}: ${p}`);
      });
    }
    assert.deepEqual(found, [], `paths outside the checkout and the system's folders:\n${found.join('\n')}`);
  });
});
