// --label and --opt pairs (issue 13): a key naming a member of Object.prototype
// is kept as data for labels and refused for options, never dropped.
import assert from 'node:assert/strict';
import { keyValues, optionValues } from '../../cli/args.js';

const PROTO_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];

describe('cli key=value pairs', () => {
  it('keeps every label key as data, and JSON writes it', () => {
    const labels = keyValues([...PROTO_KEYS.map((k) => `${k}=x`), 'a=b=c'], 'label');
    assert.deepEqual(Object.keys(labels), [...PROTO_KEYS, 'a']);
    for (const k of PROTO_KEYS) assert.equal(labels[k], 'x');
    assert.equal(labels.a, 'b=c');
    assert.equal(JSON.stringify(labels), '{"__proto__":"x","constructor":"x","toString":"x","hasOwnProperty":"x","a":"b=c"}');
    // Through a spread (as core/networks.ts copies them) and back from JSON, the key stays a key.
    const copied = { ...labels };
    assert.ok(Object.hasOwn(copied, '__proto__'));
    assert.equal(Object.getPrototypeOf(copied), Object.prototype);
    assert.ok(Object.hasOwn(JSON.parse(JSON.stringify(labels)) as object, '__proto__'));
  });

  it('refuses a pair without KEY=', () => {
    assert.throws(() => keyValues(['=x'], 'label'), /invalid label "=x": expected KEY=VALUE/);
    assert.throws(() => keyValues(['x'], 'label'), /invalid label "x": expected KEY=VALUE/);
  });

  it('keeps ordinary options', () => {
    assert.deepEqual({ ...optionValues(['mtu=1400', 'bridge.name=br1']) }, { mtu: '1400', 'bridge.name': 'br1' });
  });

  for (const key of PROTO_KEYS) {
    it(`refuses the option ${key} as unknown`, () => {
      assert.throws(() => optionValues([`${key}=x`]), new RegExp(`unknown option "${key}" in --opt ${key}=x: no driver has an option of that name`));
    });
  }
});
