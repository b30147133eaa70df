// The native front `strand cni install` puts before each plugin: it hands
// verbs to a running strand daemon, or does the work itself without one.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestBed } from '../../../../test/support/harness.js';
import { invokePluginRaw } from '../../../../plugins/cni/protocol/exec.js';
import { strandPluginDir, startDaemon } from '../plugin-bin.js';

describe('strand CNI front', function () {
  this.timeout(60000);
  const bed = useTestBed();

  it('is a native executable that answers VERSION without a daemon', async () => {
    const dir = await strandPluginDir();
    assert.deepEqual([...readFileSync(join(dir, 'strand-bridge')).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'an ELF executable');
    const o = await invokePluginRaw({ type: 'strand-bridge', path: [dir], command: 'VERSION', config: { cniVersion: '1.0.0' }, env: { STRAND_RUN_DIR: bed().tempDir(mkdtempSync(join(tmpdir(), 'strand-front-'))) } });
    assert.equal(o.exitCode, 0);
    assert.deepEqual(JSON.parse(o.stdout).supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  });

  it('fails with code 11 when a daemon is required and none runs, and is served once one does', async () => {
    const dir = await strandPluginDir();
    const runDir = bed().tempDir(mkdtempSync(join(tmpdir(), 'strand-front-')));
    const env = { STRAND_RUN_DIR: runDir, STRAND_STORE: `local://${join(runDir, 'store')}`, STRAND_CNI_REQUIRE_DAEMON: '1' };
    const status = { type: 'strand-bridge', path: [dir], command: 'STATUS' as const, config: { cniVersion: '1.1.0', name: 'front', type: 'strand-bridge', ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.97.0.0/24' }]] } }, env };
    const refused = await invokePluginRaw(status);
    assert.equal(refused.exitCode, 1);
    assert.equal(JSON.parse(refused.stdout).code, 11);
    assert.match(JSON.parse(refused.stdout).msg, /strand daemon is not reachable/);
    const host = bed().netns('h');
    await startDaemon(bed(), host.name, env);
    const served = await invokePluginRaw(status);
    assert.equal(served.exitCode, 0, served.stdout);
  });
});
