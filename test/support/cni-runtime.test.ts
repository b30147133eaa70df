// The libcni stand-in the namespace tests rely on, checked with a recording
// fake plugin: what each plugin gets on every verb.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConflist, type Conflist, type RunOptions } from './cni-runtime.js';
import { CniError } from '../../plugins/cni/protocol/types.js';

interface Call {
  cmd: string;
  type: string;
  cid: string;
  ifname: string;
  netns: string;
  args: string;
  conf: Record<string, unknown>;
}

// Records its call; ADD appends its own interface to the prevResult (or starts one).
const FAKE = `
const fs = require('node:fs');
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
const e = process.env;
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ cmd: e.CNI_COMMAND, type: conf.type, cid: e.CNI_CONTAINERID, ifname: e.CNI_IFNAME, netns: e.CNI_NETNS, args: e.CNI_ARGS, conf }) + '\\n');
if (conf.fail === e.CNI_COMMAND) { console.log(JSON.stringify({ code: 11, msg: conf.type + ' busy' })); process.exit(1); }
if (e.CNI_COMMAND === 'ADD') {
  const prev = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [], ips: [] };
  prev.interfaces.push({ name: conf.type });
  if (prev.ips.length === 0) prev.ips.push({ address: '10.0.0.2/24', interface: 0 });
  console.log(JSON.stringify(prev));
}
`;

describe('conflist runner (libcni stand-in)', () => {
  let dir: string;
  let log: string;
  let base: Omit<RunOptions, 'verb'>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strand-cni-rt-'));
    log = join(dir, 'log');
    writeFileSync(join(dir, 'fake.cjs'), FAKE);
    for (const name of ['p1', 'p2', 'p3']) {
      writeFileSync(join(dir, name), `#!${process.execPath}\nrequire(${JSON.stringify(join(dir, 'fake.cjs'))});\n`);
      chmodSync(join(dir, name), 0o755);
    }
    base = { containerId: 'c1', netns: '/run/netns/x', ifName: 'eth0', path: [dir], cacheDir: join(dir, 'cache'), env: { FAKE_LOG: log } };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const calls = (): Call[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Call) : []);
  const list = (extra: Partial<Conflist> = {}, plugins?: Record<string, unknown>[]): Conflist => ({
    cniVersion: '1.0.0',
    cniVersions: ['1.1.0', '0.4.0'],
    name: 'net',
    plugins: plugins ?? [{ type: 'p1', capabilities: { portMappings: true, mac: true } }, { type: 'p2' }, { type: 'p3', capabilities: { portMappings: false } }],
    ...extra,
  });

  it('ADD: negotiated version and name injected, runtimeConfig from declared capabilities, prevResult chained, result cached', async () => {
    const out = await runConflist(list(), { ...base, verb: 'ADD', cniArgs: 'IgnoreUnknown=1', capabilityArgs: { portMappings: [{ hostPort: 80 }], ips: ['10.0.0.9'] } });
    const c = calls();
    assert.deepEqual(c.map((x) => [x.cmd, x.type, x.conf.cniVersion, x.conf.name]), [['ADD', 'p1', '1.1.0', 'net'], ['ADD', 'p2', '1.1.0', 'net'], ['ADD', 'p3', '1.1.0', 'net']]);
    assert.deepEqual(c[0]!.conf.runtimeConfig, { portMappings: [{ hostPort: 80 }] });
    assert.equal(c[1]!.conf.runtimeConfig, undefined);
    assert.equal(c[2]!.conf.runtimeConfig, undefined);
    assert.equal(c[0]!.conf.prevResult, undefined);
    assert.deepEqual((c[2]!.conf.prevResult as { interfaces: unknown[] }).interfaces, [{ name: 'p1' }, { name: 'p2' }]);
    assert.deepEqual([c[0]!.cid, c[0]!.ifname, c[0]!.netns, c[0]!.args], ['c1', 'eth0', '/run/netns/x', 'IgnoreUnknown=1']);
    assert.deepEqual(out.result.interfaces!.map((i) => i.name), ['p1', 'p2', 'p3']);
    const cached = JSON.parse(readFileSync(join(dir, 'cache', 'results', 'net-c1-eth0'), 'utf8')) as { kind: string; result: unknown };
    assert.equal(cached.kind, 'cniCacheV1');
    assert.deepEqual(cached.result, out.raw);
  });

  it('CHECK and DEL get the cached result; DEL runs in reverse and removes the cache; a failure carries the plugin\'s code', async () => {
    const add = await runConflist(list(), { ...base, verb: 'ADD' });
    await runConflist(list(), { ...base, verb: 'CHECK' });
    await runConflist(list(), { ...base, verb: 'DEL' });
    const c = calls().slice(3);
    assert.deepEqual(c.map((x) => `${x.cmd} ${x.type}`), ['CHECK p1', 'CHECK p2', 'CHECK p3', 'DEL p3', 'DEL p2', 'DEL p1']);
    for (const x of c) assert.deepEqual(x.conf.prevResult, add.raw);
    assert.ok(!existsSync(join(dir, 'cache', 'results', 'net-c1-eth0')));
    // No cache: DEL still runs, without prevResult; CHECK refuses.
    await runConflist(list(), { ...base, verb: 'DEL' });
    assert.equal(calls().at(-1)!.conf.prevResult, undefined);
    await assert.rejects(runConflist(list(), { ...base, verb: 'CHECK' }), /no cached result/);
    await assert.rejects(runConflist(list({}, [{ type: 'p1', fail: 'ADD' }]), { ...base, verb: 'ADD' }), (e: CniError) => e.code === 11 && /plugin p1 ADD: p1 busy/.test(e.message));
  });

  it('disableCheck skips CHECK; below 1.1.0 GC and STATUS are not sent', async () => {
    await runConflist(list({ disableCheck: true }), { ...base, verb: 'ADD' });
    const n = calls().length;
    await runConflist(list({ disableCheck: true }), { ...base, verb: 'CHECK' });
    await runConflist(list({ cniVersions: [] }), { ...base, verb: 'STATUS' });
    await runConflist(list({ cniVersions: [] }), { ...base, verb: 'GC', validAttachments: [{ containerId: 'c1', ifName: 'eth0' }] });
    assert.equal(calls().length, n);
  });

  it('GC DELs cached attachments not listed, then sends both attachment keys with empty env', async () => {
    await runConflist(list(), { ...base, verb: 'ADD', containerId: 'keep' });
    await runConflist(list(), { ...base, verb: 'ADD', containerId: 'stale' });
    const n = calls().length;
    await runConflist(list(), { ...base, verb: 'GC', validAttachments: [{ containerId: 'keep', ifName: 'eth0' }] });
    const c = calls().slice(n);
    assert.deepEqual(c.map((x) => `${x.cmd} ${x.type} ${x.cid}`), ['DEL p3 stale', 'DEL p2 stale', 'DEL p1 stale', 'GC p1 ', 'GC p2 ', 'GC p3 ']);
    const gc = c[3]!;
    assert.deepEqual(gc.conf['cni.dev/valid-attachments'], [{ containerID: 'keep', ifname: 'eth0' }]);
    assert.deepEqual(gc.conf['cni.dev/attachments'], [{ containerID: 'keep', ifname: 'eth0' }]);
    assert.equal(gc.conf.runtimeConfig, undefined);
    assert.deepEqual([gc.ifname, gc.netns, gc.args], ['', '', '']);
    assert.ok(existsSync(join(dir, 'cache', 'results', 'net-keep-eth0')));
    assert.ok(!existsSync(join(dir, 'cache', 'results', 'net-stale-eth0')));
  });
});
