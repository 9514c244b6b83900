// A delta image's layers: a common layer is Docker's empty layer (two zero
// blocks); every other layer is a tar holding one file `delta`, as
// balenaEngine makes them. Reading such a layer back yields the delta bytes.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readTar } from '../archive/reader.js';
import { padding, tarHeader, tarTrailer } from '../archive/writer.js';
import { InvalidParameter } from '../errors.js';

/** Docker's empty layer: an empty tar archive (1024 zero bytes), DiffID sha256:5f70bf18…c6ef. */
export async function* emptyLayerTar(): AsyncGenerator<Buffer> {
  yield tarTrailer();
}

/** tar{delta}: the header, the delta's bytes, padding and the end-of-archive blocks. */
export async function* deltaLayerTar(size: number, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // mode 0600, owner 0:0, mtime 0: byte for byte what balenaEngine (Go's archive/tar) writes.
  yield tarHeader({ name: 'delta', type: 'file', size, mode: 0o600, mtime: 0 });
  let n = 0;
  for await (const c of body) {
    n += c.length;
    yield c;
  }
  if (n !== size) throw new InvalidParameter(`delta file changed while it was packed: ${n} bytes, expected ${size}`);
  yield Buffer.concat([padding(size), tarTrailer()]);
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
