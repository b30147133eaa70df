// Opening a namespace by path: what is not one is refused at once, naming it,
// and a FIFO (a hostile CNI_NETNS) never blocks the process on open.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { distFile } from '../support/paths.js';
import { openNetns } from '../../netlink/index.js';
import { CNI_CODES } from '../../plugins/cni/protocol/types.js';

describe('netlink: opening a namespace by path', function () {
  this.timeout(10000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'strand-ns-open-'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(join(dir, 'file'), '');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `code` (an expression using the imported function) in a child, bounded: a blocking open would hang a whole process, timers and all. */
  function inChild(module: string[], name: string, code: string): { blocked: boolean; out: string } {
    const script = `import { ${name} } from ${JSON.stringify(pathToFileURL(distFile(...module)).href)};
      try { ${code}; console.log('opened'); } catch (e) { console.log(e.code ?? '', e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 5000 });
    return { blocked: r.signal !== null, out: r.stdout + r.stderr };
  }

  for (const name of ['fifo', 'file']) {
    it(`refuses a ${name} as a network namespace without blocking`, () => {
      const r = inChild(['netlink', 'index.js'], 'openNetns', `openNetns(${JSON.stringify(join(dir, name))})`);
      assert.equal(r.blocked, false, 'the open blocked');
      assert.match(r.out, /is not a network namespace/);
    });
  }

  it('a CNI_NETNS that is a FIFO is CNI code 4, naming the path', () => {
    const fifo = join(dir, 'fifo');
    const r = inChild(['plugins', 'cni', 'protocol', 'handles.js'], 'openContainerNs', `openContainerNs(${JSON.stringify(fifo)})`);
    assert.equal(r.blocked, false, 'the open blocked');
    assert.ok(r.out.startsWith(`${CNI_CODES.invalidEnv} `) && r.out.includes(fifo), r.out);
  });

  it('opens a real one (this process\'s own)', () => {
    openNetns('/proc/self/ns/net').close();
  });
});
