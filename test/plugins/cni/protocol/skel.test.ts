import assert from 'node:assert/strict';
import { StrandError } from '../../../../common/errors.js';
import { CniError, type PluginHandlers } from '../../../../plugins/cni/protocol/types.js';
import { ENV, recorder, runSkel } from '../helpers.js';

const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.1.0', name: 'net1', type: 'test', ...extra });

describe('cni skel', () => {
  describe('hostile configs and environments', () => {
    // [what, env overrides, stdin, expected code, message pattern]
    const corpus: [string, Record<string, string | undefined>, string, number, RegExp][] = [
      ['bad JSON', {}, '{"cniVersion": "1.0.0", "name":', 6, /cannot decode network config/],
      ['empty stdin', {}, '', 6, /cannot decode/],
      ['a JSON array', {}, '[]', 6, /expected a JSON object, got an array/],
      ['a JSON string', {}, '"x"', 6, /expected a JSON object/],
      ['missing name', {}, JSON.stringify({ cniVersion: '1.0.0', type: 't' }), 7, /missing network name/],
      ['empty name', {}, conf({ name: '' }), 7, /missing network name/],
      ['name of the wrong type', {}, conf({ name: 42 }), 7, /network name 42: must be a string/],
      ['name with a slash', {}, conf({ name: '../etc' }), 7, /invalid network name "\.\.\/etc"/],
      ['unknown cniVersion', {}, conf({ cniVersion: '9.9.9' }), 1, /^incompatible CNI versions$/],
      ['0.2.0', {}, conf({ cniVersion: '0.2.0' }), 1, /incompatible CNI versions/],
      ['missing cniVersion (0.1.0)', {}, JSON.stringify({ name: 'n', type: 't' }), 1, /incompatible CNI versions/],
      ['cniVersion a number', {}, conf({ cniVersion: 1 }), 7, /invalid cniVersion 1/],
      ['type a number', {}, conf({ type: 3 }), 7, /"type" 3/],
      ['ipam a string', {}, conf({ ipam: 'host-local' }), 7, /"ipam": must be an object/],
      ['ipam.type a list', {}, conf({ ipam: { type: [] } }), 7, /ipam\.type/],
      ['runtimeConfig a list', {}, conf({ runtimeConfig: [] }), 7, /"runtimeConfig"/],
      ['args null', {}, conf({ args: null }), 7, /"args"/],
      ['dns a number', {}, conf({ dns: 1 }), 7, /"dns"/],
      ['prevResult with a bad address', {}, conf({ prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.0.0.300/24' }] } }), 7, /prevResult: ips\[0\]\.address/],
      ['prevResult with an out-of-range interface', {}, conf({ prevResult: { cniVersion: '1.1.0', interfaces: [{ name: 'a' }], ips: [{ address: '10.0.0.3/24', interface: 1 }] } }), 7, /ips\[0\]\.interface 1 does not index/],
      ['unknown command', { CNI_COMMAND: 'REMOVE' }, conf(), 4, /unknown CNI_COMMAND "REMOVE"/],
      ['ifname too long', { CNI_IFNAME: 'a-very-long-ifname' }, conf(), 4, /CNI_IFNAME "a-very-long-ifname": 18 bytes/],
      ['ifname with a colon', { CNI_IFNAME: 'eth0:1' }, conf(), 4, /CNI_IFNAME/],
      ['no container id', { CNI_CONTAINERID: '' }, conf(), 3, /CNI_CONTAINERID is empty/],
      ['container id with a space', { CNI_CONTAINERID: 'a b' }, conf(), 4, /invalid CNI_CONTAINERID "a b"/],
      ['no netns', { CNI_NETNS: '' }, conf(), 4, /CNI_NETNS env variable missing/],
      ['no path', { CNI_PATH: undefined }, conf(), 4, /CNI_PATH env variable missing/],
      ['bad CNI_ARGS', { CNI_ARGS: 'novalue' }, conf(), 4, /CNI_ARGS pair "novalue"/],
    ];
    for (const [what, env, stdin, code, msg] of corpus) {
      it(`${what} → code ${code}, error JSON on stdout, handler not called`, async () => {
        const { handlers, calls } = recorder();
        const r = await runSkel(handlers, { ...ENV, CNI_COMMAND: 'ADD', ...env }, stdin);
        assert.equal(r.code, 1);
        assert.equal(r.json?.code, code, r.stdout);
        assert.match(String(r.json?.msg), msg);
        assert.equal(typeof r.json?.cniVersion, 'string');
        assert.equal(calls.length, 0);
      });
    }
  });

  it('unknown keys and capabilities are passed through untouched', async () => {
    const { handlers, calls } = recorder();
    const r = await runSkel(handlers, { ...ENV, CNI_COMMAND: 'ADD' }, conf({ capabilities: { portMappings: true }, futureField: { x: 1 } }));
    assert.equal(r.code, 0);
    assert.deepEqual(calls[0]!.req.config.futureField, { x: 1 });
    assert.deepEqual(calls[0]!.req.config.capabilities, { portMappings: true });
  });

  it('ADD prints the result in the requested version', async () => {
    for (const v of ['1.1.0', '1.0.0', '0.4.0', '0.3.1', '0.3.0']) {
      const { handlers } = recorder();
      const r = await runSkel(handlers, { ...ENV, CNI_COMMAND: 'ADD' }, conf({ cniVersion: v }));
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.json?.cniVersion, v);
      const ips = r.json?.ips as Record<string, unknown>[];
      assert.equal(ips[0]!.version, v.startsWith('0.') ? '4' : undefined);
      assert.equal(ips[1]!.version, v.startsWith('0.') ? '6' : undefined);
      const itf = (r.json?.interfaces as Record<string, unknown>[])[0]!;
      assert.equal(itf.mtu, v === '1.1.0' ? 1500 : undefined);
    }
  });

  it('DEL, CHECK, GC and STATUS print nothing on success', async () => {
    for (const cmd of ['DEL', 'CHECK', 'GC', 'STATUS']) {
      const { handlers, calls } = recorder();
      const prev = { cniVersion: '1.1.0', ips: [{ address: '10.0.0.2/24' }] };
      const r = await runSkel(handlers, { ...ENV, CNI_COMMAND: cmd }, conf({ prevResult: prev }));
      assert.equal(r.code, 0, `${cmd}: ${r.stdout}`);
      assert.equal(r.stdout, '');
      assert.equal(calls[0]!.verb, cmd);
    }
  });

  it('CHECK without prevResult fails with code 7; CHECK below 0.4.0 and GC/STATUS below 1.1.0 are code 1', async () => {
    const { handlers, calls } = recorder();
    let r = await runSkel(handlers, { ...ENV, CNI_COMMAND: 'CHECK' }, conf());
    assert.equal(r.json?.code, 7);
    assert.match(String(r.json?.msg), /Required prevResult missing/);
    r = await runSkel(handlers, { ...ENV, CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1', prevResult: { cniVersion: '0.3.1' } }));
    assert.equal(r.json?.code, 1);
    for (const cmd of ['GC', 'STATUS']) {
      r = await runSkel(handlers, { ...ENV, CNI_COMMAND: cmd }, conf({ cniVersion: '1.0.0' }));
      assert.equal(r.json?.code, 1, cmd);
      assert.match(String(r.json?.msg), new RegExp(`does not allow ${cmd}`));
    }
    assert.equal(calls.length, 0);
  });

  it('prevResult arrives normalised to the 1.1 form from an older version', async () => {
    const { handlers, calls } = recorder();
    const prev = { cniVersion: '0.4.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ version: '4', interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' }] };
    await runSkel(handlers, { ...ENV, CNI_COMMAND: 'DEL' }, conf({ cniVersion: '0.4.0', prevResult: prev }));
    assert.deepEqual(calls[0]!.req.config.prevResult, { cniVersion: '0.4.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }] });
  });

  it('VERSION echoes a supported input version and lists every supported version, without other env', async () => {
    const { handlers } = recorder();
    let r = await runSkel(handlers, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    assert.equal(r.code, 0);
    assert.deepEqual(r.json, { cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    r = await runSkel(handlers, { CNI_COMMAND: 'VERSION' }, '');
    assert.equal(r.json?.cniVersion, '1.1.0');
    r = await runSkel(handlers, { CNI_COMMAND: 'VERSION', CNI_CONTAINERID: 'dummy', CNI_IFNAME: 'dummy' }, 'garbage');
    assert.equal(r.json?.cniVersion, '1.1.0');
  });

  it('GC parses valid-attachments, falls back to the old name, and leaves it undefined when absent', async () => {
    const env = { CNI_COMMAND: 'GC', CNI_PATH: '/bin', CNI_CONTAINERID: '', CNI_IFNAME: '', CNI_NETNS: '' };
    const seen = async (extra: Record<string, unknown>) => {
      const { handlers, calls } = recorder();
      const r = await runSkel(handlers, env, conf(extra));
      return { r, req: calls[0]?.req };
    };
    let { req } = await seen({ 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }], 'cni.dev/attachments': [] });
    assert.deepEqual(req!.validAttachments, [{ containerId: 'a', ifName: 'eth0' }]);
    ({ req } = await seen({ 'cni.dev/attachments': [{ containerID: 'b', ifname: 'net1' }] }));
    assert.deepEqual(req!.validAttachments, [{ containerId: 'b', ifName: 'net1' }]);
    ({ req } = await seen({ 'cni.dev/valid-attachments': [] }));
    assert.deepEqual(req!.validAttachments, []);
    ({ req } = await seen({}));
    assert.equal(req!.validAttachments, undefined);
    assert.ok(!('validAttachments' in req!));
    for (const bad of [{ x: 1 }, [{ containerID: 1, ifname: 'eth0' }], [{ containerID: 'a' }], [{ containerID: 'a', ifname: 'x'.repeat(16) }]]) {
      const { r, req: none } = await seen({ 'cni.dev/valid-attachments': bad });
      assert.equal(r.json?.code, 7, JSON.stringify(bad));
      assert.match(String(r.json?.msg), /cni\.dev\/valid-attachments/);
      assert.equal(none, undefined);
    }
  });

  it('a verb without a handler is a no-op success', async () => {
    const h: PluginHandlers = { add: async () => ({ cniVersion: '1.1.0' }), del: async () => undefined, check: async () => undefined };
    for (const cmd of ['GC', 'STATUS']) {
      const r = await runSkel(h, { CNI_COMMAND: cmd, CNI_PATH: '/bin' }, conf());
      assert.equal(r.code, 0);
      assert.equal(r.stdout, '');
    }
  });

  it('maps errors: CniError keeps its code, StrandError by code, anything else 999 with its message', async () => {
    const cases: [unknown, number, string | undefined][] = [
      [new CniError(50, 'not ready', 'why'), 50, 'why'],
      [new StrandError('invalid', 'bad subnet'), 7, 'strand: invalid'],
      [new StrandError('conflict', 'raced'), 11, 'strand: conflict'],
      [new StrandError('unavailable', 'etcd down'), 11, 'strand: unavailable'],
      [new StrandError('exhausted', 'pool full'), 999, 'strand: exhausted'],
      [new StrandError('kernel', 'EPERM'), 999, 'strand: kernel'],
      [new StrandError('internal', 'disk', { retryable: true }), 11, 'strand: internal'],
      [new TypeError('x is undefined'), 999, undefined],
    ];
    for (const [err, code, details] of cases) {
      const h: PluginHandlers = { add: async () => { throw err; }, del: async () => undefined, check: async () => undefined };
      const r = await runSkel(h, { ...ENV, CNI_COMMAND: 'ADD' }, conf({ cniVersion: '1.0.0' }));
      assert.equal(r.code, 1);
      assert.deepEqual(r.json, { cniVersion: '1.0.0', code, msg: (err as Error).message, ...(details ? { details } : {}) });
      // An unexpected exception leaves its stack on stderr for diagnosis.
      assert.equal(r.stderr.includes('TypeError'), err instanceof TypeError);
    }
  });

  it('STATUS not ready prints 50 on stdout with exit 1', async () => {
    const h: PluginHandlers = { add: async () => ({ cniVersion: '1.1.0' }), del: async () => undefined, check: async () => undefined, status: async () => { throw new CniError(50, 'store unreachable'); } };
    const r = await runSkel(h, { CNI_COMMAND: 'STATUS' }, conf());
    assert.equal(r.code, 1);
    assert.deepEqual(r.json, { cniVersion: '1.1.0', code: 50, msg: 'store unreachable' });
  });
});
