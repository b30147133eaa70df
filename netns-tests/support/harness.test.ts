// The harness itself: what a failing or interrupted test made is removed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { linkNames, run } from '../../test/support/harness.js';
import { projectRoot } from '../../test/support/paths.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'leaky.fixture.js');
const mocha = join(projectRoot, 'node_modules', '.bin', 'mocha');

function runFixture(mode: 'fail' | 'hang', report: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(mocha, ['--exit', fixture], { env: { ...process.env, STRAND_FIXTURE_MODE: mode, STRAND_FIXTURE_REPORT: report }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
    if (mode === 'hang') {
      // Interrupt it once it has made its namespace and link.
      const timer = setInterval(() => {
        if (existsSync(report)) {
          clearInterval(timer);
          child.kill('SIGTERM');
        }
      }, 50);
      child.on('exit', () => clearInterval(timer));
    }
  });
}

function netnsExists(name: string): boolean {
  return run('ip', ['netns', 'list']).stdout.split('\n').some((l) => l.split(' ')[0] === name);
}

describe('netns test harness', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'strand-harness-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const mode of ['fail', 'hang'] as const) {
    it(`removes the namespaces and links of a test that ${mode === 'fail' ? 'fails' : 'is interrupted by SIGTERM'}`, async () => {
      const report = join(dir, 'made.json');
      const code = await runFixture(mode, report);
      assert.notEqual(code, 0, 'the fixture run must not pass');
      const made = JSON.parse(readFileSync(report, 'utf8')) as { netns: string; link: string };
      assert.ok(!netnsExists(made.netns), `namespace ${made.netns} left behind`);
      assert.ok(!linkNames().includes(made.link), `link ${made.link} left behind`);
    });
  }
});
