import assert from 'node:assert/strict';
import { readEnv, checkIfName, checkContainerId, checkNetworkName } from '../../../../plugins/cni/protocol/env.js';
import { CniError } from '../../../../plugins/cni/protocol/types.js';
import { ENV } from '../helpers.js';

function code(fn: () => unknown): { code: number; msg: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, `expected a CniError, got ${String(err)}`);
    return { code: err.code, msg: err.message };
  }
  assert.fail('expected an error');
}

describe('cni env', () => {
  it('reads every variable for ADD, splitting CNI_PATH and CNI_ARGS', () => {
    const e = readEnv({ ...ENV, CNI_COMMAND: 'ADD', CNI_PATH: '/a::/b', CNI_ARGS: 'IgnoreUnknown=1;IP=10.0.0.5' });
    assert.deepEqual(e, { command: 'ADD', containerId: 'c1', netns: '/run/netns/x', ifName: 'eth0', path: ['/a', '/b'], args: { IgnoreUnknown: '1', IP: '10.0.0.5' } });
  });

  it('CNI_COMMAND missing, empty or unknown is code 4 naming it', () => {
    assert.deepEqual(code(() => readEnv({ ...ENV })), { code: 4, msg: 'CNI_COMMAND env variable missing' });
    assert.equal(code(() => readEnv({ ...ENV, CNI_COMMAND: '' })).code, 4);
    const bad = code(() => readEnv({ ...ENV, CNI_COMMAND: 'add' }));
    assert.equal(bad.code, 4);
    assert.match(bad.msg, /unknown CNI_COMMAND "add"/);
  });

  it('an empty container id is code 3; one the pattern refuses is 4', () => {
    assert.equal(code(() => readEnv({ ...ENV, CNI_COMMAND: 'ADD', CNI_CONTAINERID: '' })).code, 3);
    assert.equal(code(() => readEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_CONTAINERID: undefined })).code, 3);
    for (const id of ['-abc', '.x', 'a/b', 'a b', 'ä', 'a;b', '_x']) {
      const r = code(() => checkContainerId(id));
      assert.equal(r.code, 4, id);
      assert.ok(r.msg.includes(JSON.stringify(id)), r.msg);
    }
    for (const id of ['a', '0', 'A-b_c.d', 'x'.repeat(200)]) assert.equal(checkContainerId(id), id);
  });

  it('ifname: 1-15 bytes, not . or .., no / : or whitespace (code 4)', () => {
    for (const name of ['a'.repeat(16), '.', '..', 'a/b', 'a:b', 'a b', 'a\tb', 'ééééééééé']) {
      const r = code(() => checkIfName(name));
      assert.equal(r.code, 4, name);
      assert.ok(r.msg.includes('CNI_IFNAME'), r.msg);
    }
    for (const name of ['a'.repeat(15), 'eth0', 'net1.100', 'é']) assert.equal(checkIfName(name), name);
    assert.equal(code(() => readEnv({ ...ENV, CNI_COMMAND: 'ADD', CNI_IFNAME: 'x'.repeat(16) })).code, 4);
  });

  it('ADD and CHECK need CNI_NETNS; DEL does not', () => {
    for (const cmd of ['ADD', 'CHECK']) {
      const r = code(() => readEnv({ ...ENV, CNI_COMMAND: cmd, CNI_NETNS: '' }));
      assert.equal(r.code, 4);
      assert.match(r.msg, /CNI_NETNS/);
    }
    assert.equal(readEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, '');
  });

  it('ADD, DEL, CHECK and GC need CNI_PATH; STATUS and VERSION do not', () => {
    for (const cmd of ['ADD', 'DEL', 'CHECK', 'GC']) {
      const r = code(() => readEnv({ ...ENV, CNI_COMMAND: cmd, CNI_PATH: '' }));
      assert.equal(r.code, 4, cmd);
      assert.match(r.msg, /CNI_PATH/);
    }
    assert.deepEqual(readEnv({ CNI_COMMAND: 'STATUS' }).path, []);
    assert.equal(readEnv({ CNI_COMMAND: 'VERSION' }).command, 'VERSION');
  });

  it('GC and STATUS ignore the attachment variables, as libcni sends them empty', () => {
    const e = readEnv({ CNI_COMMAND: 'GC', CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '', CNI_ARGS: '', CNI_PATH: '/bin' });
    assert.equal(e.containerId, '');
    assert.deepEqual(e.path, ['/bin']);
    // A malformed id is not looked at either.
    assert.equal(readEnv({ CNI_COMMAND: 'STATUS', CNI_CONTAINERID: '/bad' }).command, 'STATUS');
  });

  it('a malformed CNI_ARGS is code 4 naming the pair', () => {
    const r = code(() => readEnv({ ...ENV, CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;oops' }));
    assert.equal(r.code, 4);
    assert.match(r.msg, /"oops"/);
  });

  it('network names use the container id pattern (code 7)', () => {
    assert.equal(checkNetworkName('net-1.a_b'), 'net-1.a_b');
    for (const n of ['', '-net', 'a b', 'a/b', 'ünï']) assert.equal(code(() => checkNetworkName(n)).code, 7, n);
    assert.match(code(() => checkNetworkName(undefined)).msg, /missing network name/);
    assert.match(code(() => checkNetworkName(5)).msg, /must be a string/);
  });

  it('a NUL byte in any CNI_* value it reads is code 4 naming the variable (issue 13)', () => {
    const cases: [string, string][] = [
      ['CNI_COMMAND', 'ADD\0'], ['CNI_CONTAINERID', 'c1\0x'], ['CNI_NETNS', '/run/netns/x\0/../../etc'],
      ['CNI_IFNAME', 'eth0\0'], ['CNI_ARGS', 'IP=10.0.0.5\0'], ['CNI_PATH', '/opt/cni/bin\0:/x'],
    ];
    for (const [name, v] of cases) {
      const e = code(() => readEnv({ ...ENV, CNI_COMMAND: 'ADD', CNI_PATH: '/opt/cni/bin', [name]: v }));
      assert.equal(e.code, 4, name);
      assert.match(e.msg, new RegExp(`^invalid ${name} ".*\\\\u0000.*": it holds a NUL byte; send the value without it$`), name);
    }
    // DEL without a namespace still reads CNI_NETNS when given.
    assert.equal(code(() => readEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_PATH: '/b', CNI_NETNS: '\0' })).code, 4);
    assert.match(code(() => checkIfName('e\0')).msg, /invalid CNI_IFNAME "e\\u0000": a NUL byte is not allowed/);
  });
});
