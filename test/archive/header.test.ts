import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checksumOk, decodeHeader } from '../../src/archive/header.js';

/** A ustar header with the given fields (octal strings as written), checksummed like GNU tar. */
function header(fields: Partial<Record<'name' | 'mode' | 'uid' | 'size' | 'mtime', string | Buffer>>, signedSum = false): Buffer {
  const b = Buffer.alloc(512);
  const put = (v: string | Buffer, off: number) => (typeof v === 'string' ? b.write(v, off, 'latin1') : v.copy(b, off));
  put(fields.name ?? 'file.txt', 0);
  put(fields.mode ?? '0000644\0', 100);
  put(fields.uid ?? '0001750\0', 108);
  put('0001750\0', 116);
  put(fields.size ?? '00000000012\0', 124);
  put(fields.mtime ?? '14523452000\0', 136);
  b[156] = 0x30;
  put('ustar\x0000', 257);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const v of b) sum += signedSum && v > 127 ? v - 256 : v;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

test('numbers: octal with NUL or space padding, empty fields, GNU base-256', () => {
  const h = decodeHeader(header({ mode: ' 755  \0', uid: '\0\0\0\0\0\0\0\0', size: '12\0' + ' '.repeat(8) }));
  assert.equal(h.mode, 0o755);
  assert.equal(h.uid, 0);
  assert.equal(h.size, 0o12);
  assert.equal(h.mtime, 0o14523452000);
  const big = Buffer.alloc(12);
  big[0] = 0x80;
  big.writeUIntBE(8 * 2 ** 33 + 5, 6, 6);
  assert.equal(decodeHeader(header({ size: big })).size, 8 * 2 ** 33 + 5);
  const neg = Buffer.alloc(12, 0xff);
  assert.throws(() => decodeHeader(header({ size: neg })), /negative size/);
});

test('a non-octal digit is refused with the field named', () => {
  assert.throws(() => decodeHeader(header({ mode: '0000648\0' })), { message: 'archive/tar: invalid mode field in header: "0000648"' });
  assert.throws(() => decodeHeader(header({ uid: '12 34\0' })), /invalid uid field in header: "12 34"/);
});

test('checksums: unsigned and old signed sums pass, any flipped bit fails', () => {
  const name = Buffer.from('caf\xe9-\xff.txt', 'latin1'); // bytes above 127 make the two sums differ
  const unsigned = header({ name });
  const signed = header({ name }, true);
  assert.notDeepEqual(unsigned.subarray(148, 156), signed.subarray(148, 156));
  assert.ok(checksumOk(unsigned));
  assert.ok(checksumOk(signed));
  for (const at of [0, 100, 147, 156, 300, 511]) {
    const bad = Buffer.from(unsigned);
    bad[at] = (bad[at] as number) ^ 0x04;
    assert.equal(checksumOk(bad), false, `flip at ${at}`);
  }
  const bad = Buffer.from(unsigned);
  bad[20] = 1;
  assert.throws(() => decodeHeader(bad), /checksum mismatch/);
});
