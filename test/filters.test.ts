import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labelMatches } from '../src/filters.js';

test('label filter: key alone, key=value, only the set\'s own keys', () => {
  const labels = { app: 'web', 'io.balena.app-id': '1', empty: '' };
  assert.equal(labelMatches(labels, 'app'), true);
  assert.equal(labelMatches(labels, 'app=web'), true);
  assert.equal(labelMatches(labels, 'app=db'), false);
  assert.equal(labelMatches(labels, 'io.balena.app-id=1'), true);
  assert.equal(labelMatches(labels, 'empty='), true);
  assert.equal(labelMatches(labels, 'missing'), false);
  assert.equal(labelMatches(labels, 'a=b=c'), false);
  assert.equal(labelMatches({ a: 'b=c' }, 'a=b=c'), true);
  assert.equal(labelMatches(null, 'app'), false);
  assert.equal(labelMatches(undefined, 'app'), false);
  // Inherited names are not labels.
  assert.equal(labelMatches(labels, 'constructor'), false);
  assert.equal(labelMatches(labels, 'toString'), false);
});
