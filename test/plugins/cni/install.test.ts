// The front's -D defines (issue 13): a --dir path with quotes, backslashes,
// "$", spaces or a newline compiles to exactly that string, never to C source.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrandError } from '../../../common/errors.js';
import { compiler, cStringLiteral, shimDefines } from '../../../plugins/cni/install.js';

const NASTY = ['/opt/cni/bin', '/tmp/a "quoted" dir', '/tmp/back\\slash\\', '/tmp/$HOME $(id) `id`', '/tmp/new\nline', '/tmp/tri??=graph', '/tmp/ünïcode\t\x7f', '/tmp/"); system("id'];

describe('cni install: C string literals for the front', () => {
  it('keeps printable ASCII and octal-escapes every other byte and " \\ ?', () => {
    assert.equal(cStringLiteral('/opt/cni/bin', 'x'), '"/opt/cni/bin"');
    assert.equal(cStringLiteral('a"b\\c?d', 'x'), '"a\\042b\\134c\\077d"');
    assert.equal(cStringLiteral('\n1', 'x'), '"\\0121"');
    assert.equal(cStringLiteral('ü', 'x'), '"\\303\\274"');
    assert.equal(cStringLiteral('$ `', 'x'), '"$ `"');
    for (const s of NASTY) assert.match(cStringLiteral(s, 'x'), /^"[\x20-\x7e]*"$/);
  });

  it('refuses a NUL byte, naming the value', () => {
    assert.throws(() => cStringLiteral('/tmp/a\0b', 'the plugin bundle path (under --dir)'), (e: unknown) => e instanceof StrandError && e.code === 'invalid' && /^the plugin bundle path \(under --dir\) "\/tmp\/a\\u0000b" holds a NUL byte/.test(e.message));
  });

  it('compiles each define to exactly its string', function () {
    const cc = compiler();
    if (!cc) this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'strand-cdefine-'));
    try {
      const src = join(dir, 'p.c');
      // The same defines the front gets, printed byte for byte, each ended by a NUL.
      writeFileSync(src, '#include <stdio.h>\n#include <string.h>\nint main(void) { const char *v[] = {PLUGIN_NAME, NODE_PATH, FALLBACK_PATH}; for (int i = 0; i < 3; i++) fwrite(v[i], 1, strlen(v[i]) + 1, stdout); return 0; }\n');
      for (const path of NASTY) {
        const exe = join(dir, 'p');
        execFileSync(cc!, ['-Wall', '-Werror', '-o', exe, ...shimDefines('strand-bridge', process.execPath, join(path, '.strand', 'strand-bridge.cjs')), src]);
        const out = execFileSync(exe).toString('utf8').split('\0');
        assert.deepEqual(out, ['strand-bridge', process.execPath, join(path, '.strand', 'strand-bridge.cjs'), ''], JSON.stringify(path));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
