// SortedKeys against a plain sorted array, through enough inserts and deletes
// to split and empty chunks.
import assert from 'node:assert/strict';
import { SortedKeys } from '../../store/sorted-keys.js';

describe('SortedKeys', () => {
  it('matches a sorted array through random inserts, deletes and prefix scans', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const set = SortedKeys.from(['m/1', 'a/2', 'a/1']);
    const model = new Set(['m/1', 'a/2', 'a/1']);
    const prefixes = ['', 'a/', 'b/', 'b/1', 'z', 'a/1'];
    for (let step = 0; step < 20000; step++) {
      const key = `${'abc'[rand(3)]}/${rand(3000)}`;
      if (rand(3) === 0) {
        set.delete(key);
        model.delete(key);
      } else {
        set.add(key);
        model.add(key);
      }
      if (step % 1000 === 0 || step === 19999) {
        const sorted = [...model].sort();
        assert.equal(set.size, model.size);
        for (const p of prefixes) assert.deepEqual([...set.withPrefix(p)], sorted.filter((k) => k.startsWith(p)), `prefix "${p}" at step ${step}`);
      }
    }
    for (const k of [...model]) set.delete(k);
    assert.equal(set.size, 0);
    assert.deepEqual([...set.withPrefix('')], []);
  });
});
