// Compressed streams: sniffing the format by its magic bytes (docker load
// accepts plain and gzip'd archives and layers) and gunzip over async chunks.
import { pipeline, Readable } from 'node:stream';
import { constants, createGunzip, createGzip } from 'node:zlib';
import { InvalidParameter } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'none';

/** The first `n` bytes (fewer at the end of the source) and the whole source, unconsumed. */
export async function peek(src: AsyncIterable<Buffer>, n: number): Promise<{ head: Buffer; all: AsyncIterable<Buffer> }> {
  const it = src[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let len = 0;
  let ended = false;
  while (len < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    chunks.push(r.value);
    len += r.value.length;
  }
  const head = Buffer.concat(chunks);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { head, all: all() };
}

export function compressionOf(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

export function gunzipped(src: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  // Bigger output chunks: fewer trips through the tar reader's async steps.
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  // Errors on either side destroy the other; the consumer sees them while iterating.
  pipeline(Readable.from(src, { objectMode: false }), gunzip, () => undefined);
  return gunzip;
}

/** A plain stream from a plain or gzip'd one; other compressions are refused by name. */
export async function decompressed(src: AsyncIterable<Buffer>, what: string): Promise<AsyncIterable<Buffer>> {
  const { head, all } = await peek(src, 6);
  const c = compressionOf(head);
  if (c === 'none') return all;
  if (c === 'gzip') return gunzipped(all);
  throw new InvalidParameter(`${what} is ${c}-compressed: skiff reads plain and gzip-compressed data`);
}

/**
 * gzip with everything fixed (level 6, default window and memory, zlib's
 * header without name or mtime): the same tar gives the same bytes on every
 * run, so a re-push gives the same digests.
 */
export function gzipDeterministic(src: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  const gzip = createGzip({ level: 6, windowBits: 15, memLevel: 8, strategy: constants.Z_DEFAULT_STRATEGY, chunkSize: 64 * 1024 });
  pipeline(Readable.from(src, { objectMode: false }), gzip, () => undefined);
  return gzip;
}
