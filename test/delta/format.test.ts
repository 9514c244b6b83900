import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeDelta } from '../../src/delta/encoder.js';
import { bufferBase, copyCommand, DeltaError, endCommand, literalCommand, magicBytes, patch } from '../../src/delta/format.js';
import { BaseIndex, IndexBuilder, windowHash, WINDOW } from '../../src/delta/index.js';
import { tempDir } from '../helpers/daemon.js';

function prng(n: number, seed: string): Buffer {
  return createHash('shake256', { outputLength: n }).update(seed).digest();
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

async function* chunked(b: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function encode(base: Buffer, target: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  await encodeDelta(bufferBase(base), chunked(target, 4096), (b) => void out.push(Buffer.from(b)));
  return Buffer.concat(out);
}

test('commands use the smallest widths, big-endian', () => {
  assert.deepEqual(magicBytes(), Buffer.from([0x72, 0x73, 0x02, 0x36]));
  assert.deepEqual(literalCommand(1), Buffer.from([0x41, 1]));
  assert.deepEqual(literalCommand(255), Buffer.from([0x41, 255]));
  assert.deepEqual(literalCommand(256), Buffer.from([0x42, 1, 0]));
  assert.deepEqual(literalCommand(0x10000), Buffer.from([0x43, 0, 1, 0, 0]));
  assert.deepEqual(literalCommand(2 ** 32), Buffer.from([0x44, 0, 0, 0, 1, 0, 0, 0, 0]));
  assert.deepEqual(copyCommand(0, 1), Buffer.from([0x45, 0, 1]));
  assert.deepEqual(copyCommand(1, 256), Buffer.from([0x46, 1, 1, 0]));
  assert.deepEqual(copyCommand(256, 1), Buffer.from([0x49, 1, 0, 1]));
  assert.deepEqual(copyCommand(0x10000, 0x10000), Buffer.from([0x4f, 0, 1, 0, 0, 0, 1, 0, 0]));
  assert.deepEqual(copyCommand(2 ** 32, 2 ** 32), Buffer.from([0x54, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]));
  assert.deepEqual(endCommand(), Buffer.from([0]));
});

test('every COPY width combination and every LITERAL form decodes', async () => {
  const base = prng(70_000, 'base');
  const offsets = [3, 300, 66_000];
  const lens = [2, 400, 3000];
  const parts: Buffer[] = [magicBytes()];
  const want: Buffer[] = [];
  for (const o of offsets) for (const l of lens) {
    if (o + l > base.length) continue;
    parts.push(copyCommand(o, l));
    want.push(base.subarray(o, o + l));
  }
  // 8-byte offset/length fields written by hand (values small enough to be valid).
  parts.push(Buffer.from([0x54, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7]));
  want.push(base.subarray(5, 12));
  // librsync's immediate literals (0x01..0x40) and the length-prefixed ones.
  parts.push(Buffer.from([0x03]), Buffer.from('abc'), Buffer.from([0x40]), Buffer.alloc(64, 0x7a));
  want.push(Buffer.from('abc'), Buffer.alloc(64, 0x7a));
  const lit = prng(70_000, 'lit');
  parts.push(literalCommand(lit.length), lit, Buffer.from([0x44, 0, 0, 0, 0, 0, 0, 0, 2]), Buffer.from('xy'), endCommand());
  want.push(lit, Buffer.from('xy'));
  const out = await collect(patch(chunked(Buffer.concat(parts), 7), bufferBase(base)));
  assert.ok(out.equals(Buffer.concat(want)));
});

test('corrupt deltas are clear errors', async () => {
  const base = bufferBase(Buffer.alloc(100));
  const run = (b: Buffer) => collect(patch(chunked(b, 3), base));
  await assert.rejects(run(Buffer.from([0xba, 0xaa, 0xaa, 0xad, 0])), /Got magic number baaaaaad rather than expected value 72730236/);
  await assert.rejects(run(Buffer.from([0x72, 0x73])), /unexpected EOF/);
  await assert.rejects(run(Buffer.concat([magicBytes(), literalCommand(10), Buffer.from('abc')])), /unexpected EOF/);
  await assert.rejects(run(Buffer.concat([magicBytes(), copyCommand(0, 10)])), /unexpected EOF/);
  await assert.rejects(run(Buffer.concat([magicBytes(), copyCommand(90, 20), endCommand()])), /base has only 100/);
  await assert.rejects(run(Buffer.concat([magicBytes(), Buffer.from([0x60])])), /invalid delta command 0x60/);
  await assert.rejects(run(Buffer.concat([magicBytes(), endCommand(), Buffer.from('x')])), DeltaError);
});

test('encoder round trip: shifted, edited, repeated and new data', async () => {
  const base = prng(300_000, 'b');
  const target = Buffer.concat([
    base.subarray(1000, 50_000),
    Buffer.from('inserted text'),
    base.subarray(50_003, 120_000),
    prng(5000, 'new'),
    base.subarray(7, 40),
    base.subarray(200_000, 300_000),
    base.subarray(0, 5000),
  ]);
  const d = await encode(base, target);
  const out = await collect(patch(chunked(d, 999), bufferBase(base)));
  assert.ok(out.equals(target));
  assert.ok(d.length < 5000 + 13 + 33 + 200, `delta is ${d.length} bytes`);
  // Identical input: one COPY.
  const same = await encode(base, base);
  assert.ok(same.length <= 4 + 9 + 1, `identical delta is ${same.length} bytes`);
  // Empty target and empty base.
  assert.equal((await collect(patch(chunked(await encode(base, Buffer.alloc(0))), bufferBase(base)))).length, 0);
  const fromEmpty = await encode(Buffer.alloc(0), target);
  assert.ok((await collect(patch(chunked(fromEmpty), bufferBase(Buffer.alloc(0))))).equals(target));
});

test('single-byte edits cost bytes, not blocks', async () => {
  const base = prng(1_000_000, 'x');
  const target = Buffer.from(base);
  for (let i = 1; i < 100; i++) target[i * 10_007] ^= 0xff;
  const d = await encode(base, target);
  assert.ok((await collect(patch(chunked(d, 4096), bufferBase(base)))).equals(target));
  assert.ok(d.length < 100 * 20, `delta is ${d.length} bytes for 99 one-byte edits`);
});

test('rdiff patch applies skiff deltas; skiff applies rdiff deltas', async () => {
  const dir = tempDir('delta-rdiff');
  const base = Buffer.concat([prng(200_000, 'r1'), Buffer.from('hello '.repeat(1000)), prng(100_000, 'r2')]);
  const target = Buffer.concat([base.subarray(50_000, 210_000), Buffer.from('changed'), base.subarray(0, 40_000), prng(3000, 'r3')]);
  writeFileSync(join(dir, 'base'), base);
  writeFileSync(join(dir, 'target'), target);
  writeFileSync(join(dir, 'skiff.delta'), await encode(base, target));
  const p = spawnSync('rdiff', ['patch', '-f', join(dir, 'base'), join(dir, 'skiff.delta'), join(dir, 'out')], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  assert.ok(readFileSync(join(dir, 'out')).equals(target));

  for (const block of ['512', '2048']) {
    const s = spawnSync('rdiff', ['signature', '-f', '-b', block, '-S', '32', '-H', 'blake2', join(dir, 'base'), join(dir, 'sig')], { encoding: 'utf8' });
    assert.equal(s.status, 0, s.stderr);
    const d = spawnSync('rdiff', ['delta', '-f', join(dir, 'sig'), join(dir, 'target'), join(dir, 'rdiff.delta')], { encoding: 'utf8' });
    assert.equal(d.status, 0, d.stderr);
    const rd = readFileSync(join(dir, 'rdiff.delta'));
    const out = await collect(patch(chunked(rd, 777), bufferBase(base)));
    assert.ok(out.equals(target), `block ${block}`);
  }
});

test('the index samples the same windows whatever the chunking', () => {
  const base = prng(100_003, 'idx');
  const whole = new BaseIndex(base.length, 64);
  new IndexBuilder(whole).push(base);
  for (const size of [1, 31, 32, 33, 1000, 4099]) {
    const idx = new BaseIndex(base.length, 64);
    const b = new IndexBuilder(idx);
    for (let i = 0; i < base.length; i += size) b.push(base.subarray(i, i + size));
    for (let off = 0; off + WINDOW <= base.length; off += 64) {
      const h = windowHash(base, off);
      assert.equal(idx.find(h), whole.find(h), `chunk ${size}, sample at ${off}: ${idx.find(h)} vs ${whole.find(h)}`);
    }
  }
  // The table is lossy on purpose (8 probes at most, 1.25 slots per sample) but keeps nearly all.
  let kept = 0;
  let samples = 0;
  for (let off = 0; off + WINDOW <= base.length; off += 64, samples++) if (whole.find(windowHash(base, off)) === off) kept++;
  assert.ok(kept / samples > 0.93, `${kept} of ${samples} samples kept`);
  assert.ok(whole.bytes < base.length * 0.2, `index is ${whole.bytes} bytes`);
});
