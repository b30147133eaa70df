// The layering rules (.dependency-cruiser.cjs) catch what they are for: an
// upward import, a front door reaching a driver, the test trees importing
// each other. Run on a small tree of their own, so the test fails if the
// rules stop matching, whatever the project's code looks like.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { projectRoot } from '../support/paths.js';

function cruise(files: Record<string, string>): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-layers-'));
  try {
    copyFileSync(join(projectRoot, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    const bin = join(projectRoot, 'node_modules', '.bin', 'depcruise');
    const r = spawnSync(bin, ['--config', '.dependency-cruiser.cjs', '--output-type', 'err', ...new Set(Object.keys(files).map((p) => p.split('/')[0]!))], { cwd: dir, encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const exporting = 'export const x = 1;\n';

describe('project: the layering rules', function () {
  this.timeout(60000);

  it('pass imports that point down', () => {
    const r = cruise({
      'common/errors.ts': exporting,
      'core/controller.ts': "import { x } from '../common/errors.js';\nexport const y = x;\n",
      'drivers/bridge/index.ts': "import { y } from '../../core/controller.js';\nexport const z = y;\n",
      'runtime/index.ts': "import { z } from '../drivers/bridge/index.js';\nexport const w = z;\n",
      'plugins/cni/bridge/plugin.ts': "import { w } from '../../../runtime/index.js';\nexport const v = w;\n",
    });
    assert.equal(r.status, 0, r.out);
  });

  it('fail an upward import, a front door reaching a driver, and one test tree importing the other', () => {
    const r = cruise({
      'drivers/bridge/index.ts': exporting,
      'core/controller.ts': "import { x } from '../drivers/bridge/index.js';\nexport const y = x;\n",
      'plugins/cni/bridge/plugin.ts': "import { x } from '../../../drivers/bridge/index.js';\nexport const v = x;\n",
      'netns-tests/a.test.ts': exporting,
      'test/b.test.ts': "import { x } from '../netns-tests/a.test.js';\nexport const u = x;\n",
    });
    assert.notEqual(r.status, 0);
    assert.match(r.out, /core-imports-upward/);
    assert.match(r.out, /front-door-imports-a-driver/);
    assert.match(r.out, /test-trees-import-each-other/);
  });
});
