// A delta image's layers: a common layer is Docker's empty layer (two zero
// blocks); every other layer is a tar holding one file `delta`, as
// balenaEngine makes them. Reading such a layer back yields the delta bytes.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readTar } from '../archive/reader.js';
import { InvalidParameter } from '../errors.js';

const BLOCK = 512;

/** Docker's empty layer: an empty tar archive (1024 zero bytes), DiffID sha256:5f70bf18…c6ef. */
export async function* emptyLayerTar(): AsyncGenerator<Buffer> {
  yield Buffer.alloc(2 * BLOCK);
}

function octal(b: Buffer, at: number, width: number, n: number): void {
  b.write(n.toString(8).padStart(width - 1, '0') + '\0', at, width, 'ascii');
}

/** The ustar header of `delta` (mode 0600, owner 0:0, mtime 0), as Go's archive/tar writes it. */
export function deltaHeader(size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write('delta', 0, 'ascii');
  octal(h, 100, 8, 0o600);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0);
  h.write('0', 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** tar{delta}: the header, the delta's bytes, padding and the end-of-archive blocks. */
export async function* deltaLayerTar(size: number, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield deltaHeader(size);
  let n = 0;
  for await (const c of body) {
    n += c.length;
    yield c;
  }
  if (n !== size) throw new InvalidParameter(`delta file changed while it was packed: ${n} bytes, expected ${size}`);
  yield Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK + 2 * BLOCK);
}

/** A delta layer's tar again, from the directory it was extracted to (docker load extracts before it knows). */
export async function* deltaLayerFromDir(diffDir: string): AsyncGenerator<Buffer> {
  const file = join(diffDir, 'delta');
  const st = await stat(file).catch(() => undefined);
  if (!st) {
    yield* emptyLayerTar();
    return;
  }
  yield* deltaLayerTar(st.size, createReadStream(file));
}

/**
 * The delta inside a delta layer's tar, or undefined for an empty layer (a
 * layer the target shares with the base). The rest of the tar is read to its
 * end after the delta, so whatever hashes the stream sees all of it.
 */
export async function deltaOfLayer(tar: AsyncIterable<Buffer>): Promise<AsyncIterable<Buffer> | undefined> {
  const { entries } = readTar(tar);
  const first = await entries.next();
  if (first.done) return undefined;
  return (async function* () {
    yield* first.value.body;
    for await (const e of entries) for await (const _ of e.body);
  })();
}
