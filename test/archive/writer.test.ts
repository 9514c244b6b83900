import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyPax, decodeHeader, parsePax } from '../../src/archive/header.js';
import { tarHeader } from '../../src/archive/writer.js';

/** The entry's header as a reader sees it: a PAX record block first, when there is one. */
function read(blocks: Buffer) {
  const first = decodeHeader(blocks.subarray(0, 512));
  if (blocks.length === 512) return first;
  const pax = parsePax(blocks.subarray(512, 512 + first.size));
  const main = decodeHeader(blocks.subarray(blocks.length - 512));
  applyPax(main, pax);
  return main;
}

test('docker save headers: a layer.tar of 8 GiB or more carries its size in PAX', () => {
  const small = tarHeader({ name: 'abc/layer.tar', type: 'file', size: 8 * 2 ** 30 - 1, mtime: 0 });
  assert.equal(small.length, 512, 'below 8 GiB: one ustar block, as before');
  assert.equal(read(small).size, 8 * 2 ** 30 - 1);
  const big = tarHeader({ name: 'abc/layer.tar', type: 'file', size: 9 * 2 ** 30 + 5, mtime: 0 });
  assert.ok(big.length > 512);
  const h = read(big);
  assert.equal(h.name, 'abc/layer.tar');
  assert.equal(h.size, 9 * 2 ** 30 + 5);
  const long = 'd/' + 'x'.repeat(120) + '/layer.tar';
  const both = read(tarHeader({ name: long, type: 'file', size: 10 * 2 ** 30, mtime: 0 }));
  assert.deepEqual([both.name, both.size], [long, 10 * 2 ** 30]);
});
