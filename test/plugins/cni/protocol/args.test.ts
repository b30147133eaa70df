import assert from 'node:assert/strict';
import { checkCniArgKeys, formatCniArgs, getCi, lowerKeys, parseCniArgs, runtimeValue } from '../../../../plugins/cni/protocol/args.js';
import { CniError } from '../../../../plugins/cni/protocol/types.js';

describe('cni args', () => {
  it('parses K=V;K=V, keeps "=" in values and skips empty pairs', () => {
    assert.deepEqual(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5,fd00::5'), { IgnoreUnknown: '1', K8S_POD_NAME: 'web', IP: '10.0.0.5,fd00::5' });
    assert.deepEqual(parseCniArgs('A=b=c;;B='), { A: 'b=c', B: '' });
    assert.deepEqual(parseCniArgs(''), {});
    assert.deepEqual(parseCniArgs(undefined), {});
  });

  it('refuses a pair without a key or "=" with code 4', () => {
    for (const bad of ['A', '=1', 'A=1;B']) {
      assert.throws(() => parseCniArgs(bad), (e: CniError) => e.code === 4 && e.message.includes('CNI_ARGS'));
    }
  });

  it('formats back to the same text', () => {
    const text = 'IgnoreUnknown=1;IP=10.0.0.5';
    assert.equal(formatCniArgs(parseCniArgs(text)), text);
    assert.equal(formatCniArgs('raw=1'), 'raw=1');
    assert.equal(formatCniArgs(undefined), '');
  });

  it('unknown keys are code 2 naming the key unless IgnoreUnknown is set', () => {
    assert.throws(() => checkCniArgKeys({ FOO: '1' }, ['IP']), (e: CniError) => e.code === 2 && e.message.includes('"FOO"'));
    checkCniArgKeys({ FOO: '1', IgnoreUnknown: '1' }, ['IP']);
    checkCniArgKeys({ FOO: '1', IgnoreUnknown: 'true' }, ['IP']);
    assert.throws(() => checkCniArgKeys({ FOO: '1', IgnoreUnknown: '0' }, ['IP']), (e: CniError) => e.code === 2);
    checkCniArgKeys({ IP: '10.0.0.1', K8S_POD_NAMESPACE: 'ns', K8S_POD_NAME: 'p', K8S_POD_INFRA_CONTAINER_ID: 'x', K8S_POD_UID: 'u' }, ['IP']);
  });

  it('reads keys case-insensitively, preferring an exact match', () => {
    const rc = { portMappings: 1, HostPort: 8080, hostport: 9090, ContainerPort: 80 };
    assert.equal(getCi(rc, 'hostPort'), 8080);
    assert.equal(getCi(rc, 'hostport'), 9090);
    assert.equal(getCi(rc, 'containerport'), 80);
    assert.equal(getCi(rc, 'PORTMAPPINGS'), 1);
    assert.equal(getCi(rc, 'missing'), undefined);
    assert.equal(getCi(null, 'x'), undefined);
    assert.equal(getCi([1], '0'), undefined);
    assert.equal(runtimeValue({ runtimeConfig: { PortMappings: [{ HostPort: 1 }] } }, 'portMappings') !== undefined, true);
    assert.equal(runtimeValue({}, 'portMappings'), undefined);
  });

  it('lowerKeys lowers every key in nested objects and lists', () => {
    assert.deepEqual(lowerKeys([{ HostPort: 80, Nested: { ContainerPort: 1 } }, 'X']), [{ hostport: 80, nested: { containerport: 1 } }, 'X']);
  });
});
