// After every namespace test has run: nothing the tests made may remain.
import assert from 'node:assert/strict';
import { leftovers } from '../test/support/harness.js';

after('no namespace or link made by a test is left behind', () => {
  assert.deepEqual(leftovers(), []);
});
