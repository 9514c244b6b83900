import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { demux, frameHeader, writeFrames } from '../../src/api/stdcopy.js';
import { humanSize, progressBar } from '../../src/api/jsonstream.js';

test('frame header bytes match Docker', () => {
  assert.deepEqual([...frameHeader(1, 3)], [1, 0, 0, 0, 0, 0, 0, 3]);
  assert.deepEqual([...frameHeader(2, 0x01020304)], [2, 0, 0, 0, 1, 2, 3, 4]);
});

test('write and demux round-trip, split at arbitrary boundaries, large payloads chunked', async () => {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const big = Buffer.alloc(100_000, 7);
  await writeFrames(sink, 1, Buffer.from('hi\n'));
  await writeFrames(sink, 2, big);
  await writeFrames(sink, 1, Buffer.alloc(0));
  sink.end();
  await new Promise((r) => sink.on('end', r));
  const all = Buffer.concat(chunks);
  assert.deepEqual([...all.subarray(0, 11)], [1, 0, 0, 0, 0, 0, 0, 3, 0x68, 0x69, 0x0a]);
  const pieces = [];
  for (let i = 0; i < all.length; i += 1000) pieces.push(all.subarray(i, i + 1000));
  let out = '';
  let err = 0;
  for await (const f of demux(Readable.from(pieces))) {
    if (f.stream === 1) out += f.payload.toString();
    else err += f.payload.length;
  }
  assert.equal(out, 'hi\n');
  assert.equal(err, big.length);
});

test('demux refuses truncated and invalid frames', async () => {
  await assert.rejects(async () => {
    for await (const _ of demux(Readable.from([Buffer.from([1, 0, 0, 0, 0, 0, 0, 5, 0x61])]))) void _;
  }, /unexpected EOF/);
  await assert.rejects(async () => {
    for await (const _ of demux(Readable.from([Buffer.from([9, 0, 0, 0, 0, 0, 0, 0])]))) void _;
  }, /unrecognized input header/);
});

test('human sizes and progress bars look like the docker CLI', () => {
  assert.equal(humanSize(2_794_000), '2.794MB');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1500), '1.5kB');
  assert.equal(progressBar(100, 100), `[${'='.repeat(50)}>]     100B/100B`);
  assert.match(progressBar(25, 100), /^\[=+>\s+\]/);
  assert.equal(progressBar(25, 100).indexOf(']'), 51);
});
