import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPlugin, invokePlugin, invokePluginRaw } from '../../../../plugins/cni/protocol/exec.js';
import { CniError } from '../../../../plugins/cni/protocol/types.js';

describe('cni exec (libcni side)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strand-cni-exec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function script(sub: string, name: string, body: string, mode = 0o755): string {
    mkdirSync(join(dir, sub), { recursive: true });
    const file = join(dir, sub, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, mode);
    return file;
  }

  it('takes the first regular executable in path order, skipping directories and non-executables', () => {
    mkdirSync(join(dir, 'a', 'p'), { recursive: true });
    script('b', 'p', 'exit 0', 0o644);
    const want = script('c', 'p', 'exit 0');
    script('d', 'p', 'exit 0');
    assert.equal(findPlugin('p', [join(dir, 'missing'), join(dir, 'a'), join(dir, 'b'), join(dir, 'c'), join(dir, 'd')]), want);
  });

  it('refuses a "/" in type and reports a missing plugin with the path, code 7', () => {
    script('a', 'p', 'exit 0');
    for (const t of ['../a/p', 'a/p', '/bin/sh', '']) assert.throws(() => findPlugin(t, [dir]), (e: CniError) => e.code === 7 && /invalid plugin type/.test(e.message), t);
    assert.throws(() => findPlugin('nope', [join(dir, 'a')]), (e: CniError) => e.code === 7 && e.message.includes('failed to find plugin "nope"') && e.message.includes(join(dir, 'a')));
  });

  it('passes the CNI_* environment and the config on stdin', async () => {
    script('bin', 'dump', 'cat > "$0.stdin"; env | grep ^CNI_ | sort > "$0.env"; echo "{\\"cniVersion\\":\\"0.4.0\\",\\"ips\\":[{\\"version\\":\\"4\\",\\"address\\":\\"10.0.0.2/24\\"}]}"');
    const r = await invokePlugin({ type: 'dump', path: [join(dir, 'bin')], command: 'ADD', containerId: 'c1', netns: '/run/netns/n', ifName: 'eth0', args: { IgnoreUnknown: '1', IP: '10.0.0.2' }, config: { cniVersion: '0.4.0', name: 'n' } });
    assert.deepEqual(r, { cniVersion: '0.4.0', ips: [{ address: '10.0.0.2/24' }] });
    const { readFileSync } = await import('node:fs');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'bin', 'dump.stdin'), 'utf8')), { cniVersion: '0.4.0', name: 'n' });
    assert.deepEqual(readFileSync(join(dir, 'bin', 'dump.env'), 'utf8').trim().split('\n'), [
      'CNI_ARGS=IgnoreUnknown=1;IP=10.0.0.2',
      'CNI_COMMAND=ADD',
      'CNI_CONTAINERID=c1',
      'CNI_IFNAME=eth0',
      'CNI_NETNS=/run/netns/n',
      `CNI_PATH=${join(dir, 'bin')}`,
    ]);
  });

  it('turns an error JSON into a CniError with the plugin\'s code; falls back to stderr when stdout is empty', async () => {
    script('bin', 'err', 'echo \'{"code":11,"msg":"busy","details":"later"}\'; exit 1');
    script('bin', 'crash', 'echo boom >&2; exit 2');
    script('bin', 'junk', 'echo not json; exit 0');
    await assert.rejects(invokePlugin({ type: 'err', path: [join(dir, 'bin')], command: 'DEL', config: {} }), (e: CniError) => e.code === 11 && e.message === 'busy' && e.details === 'later');
    await assert.rejects(invokePlugin({ type: 'crash', path: [join(dir, 'bin')], command: 'DEL', config: {} }), (e: CniError) => e.code === 999 && /exit 2\): boom/.test(e.message));
    await assert.rejects(invokePlugin({ type: 'junk', path: [join(dir, 'bin')], command: 'ADD', config: {} }), (e: CniError) => e.code === 6 && /printed no valid result/.test(e.message));
    // Non-ADD verbs return nothing even when the plugin prints something.
    assert.equal(await invokePlugin({ type: 'junk', path: [join(dir, 'bin')], command: 'DEL', config: {} }), undefined);
  });

  it('VERSION gets dummy values, and a plugin that ignores stdin is fine', async () => {
    script('bin', 'v', 'echo "$CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS"');
    const o = await invokePluginRaw({ type: 'v', path: [join(dir, 'bin')], command: 'VERSION', config: { cniVersion: '1.1.0' } });
    assert.equal(o.exitCode, 0);
    assert.equal(o.stdout.trim(), 'dummy dummy dummy');
  });
});
