// Store URLs: what parses, what is refused (with an 'invalid' error naming the
// bad part), and that the default and STRAND_STORE are honoured.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isStrandError } from '../../common/errors.js';
import { openStore } from '../../store/index.js';
import { DEFAULT_STORE_URL, parseStoreUrl, redactUrl } from '../../store/url.js';

describe('store URLs', () => {
  it('parses local, etcd and redis URLs', () => {
    assert.deepEqual(parseStoreUrl(), { kind: 'local', dir: '/var/lib/strand' });
    assert.equal(DEFAULT_STORE_URL, 'local:///var/lib/strand');
    assert.deepEqual(parseStoreUrl('local:///tmp/x/?compactBytes=4096'), { kind: 'local', dir: '/tmp/x', compactBytes: 4096 });
    assert.deepEqual(parseStoreUrl('etcd://10.0.0.1:2379,10.0.0.2:2380'), {
      kind: 'etcd',
      hosts: [{ host: '10.0.0.1', port: 2379 }, { host: '10.0.0.2', port: 2380 }],
    });
    assert.deepEqual(parseStoreUrl('etcd://root:s%40cret@[::1]:2379?tls=1&ca=/ca.pem&cert=/c.pem&key=/k.pem'), {
      kind: 'etcd',
      hosts: [{ host: '::1', port: 2379 }],
      username: 'root',
      password: 's@cret',
      tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' },
    });
    assert.deepEqual(parseStoreUrl('etcd://etcd.example'), { kind: 'etcd', hosts: [{ host: 'etcd.example', port: 2379 }] });
    assert.deepEqual(parseStoreUrl('redis://:pw@127.0.0.1:6380/2'), {
      kind: 'redis', host: '127.0.0.1', port: 6380, db: 2, password: 'pw', prefix: 'strand:', durability: 'fsync',
    });
    assert.deepEqual(parseStoreUrl('rediss://cache:6379?ca=/ca.pem&prefix=net1:'), {
      kind: 'redis', host: 'cache', port: 6379, db: 0, tls: { ca: '/ca.pem' }, prefix: 'net1:', durability: 'fsync',
    });
    assert.deepEqual(parseStoreUrl('redis://h?durability=none'), {
      kind: 'redis', host: 'h', port: 6379, db: 0, prefix: 'strand:', durability: 'none',
    });
    assert.deepEqual(parseStoreUrl('redis+sentinel://:pw@10.0.0.1:26380,s2,[::1]:5000/mymaster/3?prefix=n:'), {
      kind: 'redis',
      sentinel: {
        hosts: [{ host: '10.0.0.1', port: 26380 }, { host: 's2', port: 26379 }, { host: '::1', port: 5000 }],
        masterName: 'mymaster',
        auth: false,
      },
      db: 3, password: 'pw', prefix: 'n:', durability: 'fsync',
    });
    assert.deepEqual(parseStoreUrl('redis+sentinel://u:p@s1/m/?sentinelAuth=1&durability=none'), {
      kind: 'redis',
      sentinel: { hosts: [{ host: 's1', port: 26379 }], masterName: 'm', auth: true },
      db: 0, username: 'u', password: 'p', prefix: 'strand:', durability: 'none',
    });
  });

  it('refuses bad URLs with an invalid error that names the problem', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /expected local/],
      ['/var/lib/strand', /expected local/],
      ['consul://h:1', /unknown scheme "consul:"/],
      ['local://host/dir', /no host/],
      ['local://relative', /no host/],
      ['local:///', /absolute directory/],
      ['local:///d?compactBytes=12', /compactBytes=12/],
      ['local:///d?colour=red', /unknown option "colour"/],
      ['etcd://', /at least one host/],
      ['etcd://h:0', /port "0"/],
      ['etcd://h:99999', /port "99999"/],
      ['etcd://h:12,', /host ""/],
      ['etcd://h:x', /host "h:x"/],
      ['etcd://user@h:1', /both user and password/],
      ['etcd://h:1/path', /no path/],
      ['etcd://h:1?ca=/x', /need tls=1/],
      ['etcd://h:1?tls=maybe', /tls=maybe/],
      ['etcd://h:1?tls=1&cert=/c', /cert and key/],
      ['etcd://h:1?tls=1&tls=1', /given twice/],
      ['redis://a:1,b:2', /one host/],
      ['redis://h:1/db', /database "db"/],
      ['redis://h:1?db=2', /unknown option "db"/],
      ['redis://:%zz@h:1', /percent-encoding/],
      ['redis://h:1?durability=eventually', /durability=eventually" must be fsync \(the default\) or none/],
      ['redis+sentinel://s1:26379', /master's name/],
      ['redis+sentinel://s1:26379/', /master's name/],
      ['redis+sentinel://s1/m/1/2', /master's name/],
      ['redis+sentinel://s1/m/x', /database "x"/],
      ['redis+sentinel://s1/m%20x', /master name "m x"/],
      ['redis+sentinel:///m', /at least one sentinel/],
      ['redis+sentinel://s1/m?tls=1', /unknown option "tls"/],
      ['redis+sentinel://s1/m?sentinelAuth=1', /sentinelAuth=1 needs a password/],
      ['rediss+sentinel://s1/m', /not supported yet/],
    ];
    for (const [url, message] of cases) {
      assert.throws(() => parseStoreUrl(url), (err: unknown) => {
        assert.ok(isStrandError(err, 'invalid'), `${url}: ${String(err)}`);
        assert.match(err.message, message, url);
        return true;
      });
    }
  });

  it('keeps passwords out of messages and store.url', async () => {
    assert.equal(redactUrl('etcd://root:hunter2@h:1'), 'etcd://***@h:1');
    assert.equal(redactUrl('redis://:hunter2@h:1/0'), 'redis://***@h:1/0');
    assert.equal(redactUrl('redis://h:1/0'), 'redis://h:1/0');
    assert.equal(redactUrl('local:///x'), 'local:///x');
    assert.throws(() => parseStoreUrl('redis://:hunter2@h:1/zz'), (err: Error) => !err.message.includes('hunter2'));
    await assert.rejects(openStore('etcd://root:hunter2@h:0'), (err: Error) => isStrandError(err, 'invalid') && !err.message.includes('hunter2'));
  });

  // Passwords with every character that means something in a URL. Raw "/",
  // "?" and "#" end the host part early: such URLs are refused (asking for
  // percent-encoding), and no message shows any part of the password.
  const SECRET = /s3cr|et9|hunt|pa\/|ss@|p%zz/;
  const passwords: Array<[url: string, expect: { password: string; user?: string } | RegExp]> = [
    ['redis://:pa%2Fss@h:1', { password: 'pa/ss' }],
    ['redis://:pa%3Fss@h:1/2', { password: 'pa?ss' }],
    ['redis://:pa%23ss@h:1', { password: 'pa#ss' }],
    ['redis://:pa%40ss@h:1', { password: 'pa@ss' }],
    ['redis://:pa@ss@h:1', { password: 'pa@ss' }],
    ['redis://:pa:ss@h:1', { password: 'pa:ss' }],
    ['redis://:pa%25ss@h:1', { password: 'pa%ss' }],
    ['redis://us%2Fer:pa%2Fss@h:1', { user: 'us/er', password: 'pa/ss' }],
    ['etcd://root:pa%2Fss%3F@h:1,h2:2', { user: 'root', password: 'pa/ss?' }],
    ['redis+sentinel://:pa%2Fss@s1:1,s2:2/m', { password: 'pa/ss' }],
    ['redis://:pa/ss@h:1', /"@" after the host part: percent-encode "\/", "\?" and "#"/],
    ['redis://:pa/ss@h:1/2', /"@" after the host part/],
    ['redis://:pa?ss@h:1', /"@" after the host part/],
    ['redis://:s3cr?et9=1@h:1', /"@" after the host part/],
    ['etcd://root:hunt/er2@h:1', /"@" after the host part/],
    ['etcd://root:hunt?er2@h:1', /"@" after the host part/],
    ['redis+sentinel://:pa/ss@s1:1/m', /"@" after the host part/],
    ['redis://:pa#ss@h:1', /"#" is not allowed/],
    ['etcd://root:s3cr#et9@h:1', /"#" is not allowed/],
    ['redis://:p%zz@h:1', /password is not valid percent-encoding/],
    ['redis://:100%@h:1', /password is not valid percent-encoding \(write "%" as %25\)/],
  ];
  passwords.forEach(([url, expect], i) => {
    it(`password case ${i + 1} (${redactUrl(url)}): ${expect instanceof RegExp ? 'refused' : 'parsed'}, never shown`, () => {
      if (expect instanceof RegExp) {
        assert.throws(() => parseStoreUrl(url), (err: unknown) => {
          assert.ok(isStrandError(err, 'invalid'), String(err));
          assert.match(err.message, expect);
          assert.doesNotMatch(err.message, SECRET, err.message);
          assert.match(err.message, /store URL "[a-z+]+:\/\/\*\*\*@/);
          return true;
        });
      } else {
        const config = parseStoreUrl(url) as { password?: string; username?: string };
        assert.equal(config.password, expect.password);
        assert.equal(config.username, expect.user);
      }
      assert.doesNotMatch(redactUrl(url), SECRET, redactUrl(url));
      assert.match(redactUrl(url), /^[a-z+]+:\/\/\*\*\*@/);
    });
  });

  it('a store opened with a password keeps it out of store.url, whatever the characters', async () => {
    // etcd3 connects lazily: open succeeds and the URL can be inspected.
    const store = await openStore('etcd://root:pa%2Fss%3Fhunt@127.0.0.1:1');
    assert.equal(store.url, 'etcd://***@127.0.0.1:1');
    await store.close();
  });

  it('opens $STRAND_STORE when no URL is given', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-env-'));
    const saved = process.env.STRAND_STORE;
    try {
      process.env.STRAND_STORE = `local://${dir}`;
      const store = await openStore();
      await store.put('k', 'v');
      assert.equal(store.url, `local://${dir}`);
      await store.close();
      assert.ok(fs.existsSync(path.join(dir, 'data')));
    } finally {
      if (saved === undefined) delete process.env.STRAND_STORE;
      else process.env.STRAND_STORE = saved;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads no etcd or redis client for a local store', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-lazy-'));
    try {
      const here = path.dirname(fileURLToPath(import.meta.url));
      const child = path.join(here, 'child-writer.js');
      const trace = path.join(here, 'trace-imports.js');
      const run = (url: string) => spawnSync(process.execPath, ['--import', trace, child, 'puts', url, 'lazy', '1'], { encoding: 'utf8' });
      const local = run(`local://${dir}`);
      assert.equal(local.status, 0, local.stderr);
      assert.match(local.stderr, /import koffi/, 'the trace hook works');
      assert.doesNotMatch(local.stderr, /import (etcd3|ioredis|@grpc)/);
      // The hook does see a backend's client when its URL is used.
      const etcd = run('etcd://127.0.0.1:1');
      assert.match(etcd.stderr, /import etcd3/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
