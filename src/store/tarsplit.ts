// Tar-split records: what it takes to rebuild a layer's tar byte for byte
// from the files on disk. Raw non-content bytes (headers, padding, trailer)
// are stored as segments; file contents are references to the extracted
// file. Kept as gzip'd JSON lines beside the layer, written as a stream.
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip, createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SystemError } from '../errors.js';

/** A segment of raw bytes, or `n` bytes of content from the file at `p`. */
export type SplitRecord = { s: string } | { p: string; n: number; k: number };

/** Lines are gathered up to this many characters before one write to gzip. */
const LINE_BATCH = 64 * 1024;

export class TarSplitWriter {
  private readonly gz = createGzip({ level: 6 });
  private readonly out;
  private k = 0;
  // A layer of small files makes two records per file. Each write to the
  // gzip stream is a trip through libuv's thread pool, and a full gzip
  // buffer made extraction wait for those trips: records are batched.
  private batch: string[] = [];
  private batched = 0;
  /** A write error (ENOSPC...) is kept and reported by the next call, never thrown as an event. */
  private failed: Error | undefined;

  constructor(path: string) {
    this.out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    this.out.on('error', (e) => (this.failed ??= e));
    this.gz.on('error', (e) => (this.failed ??= e));
    this.gz.pipe(this.out);
  }

  private line(rec: SplitRecord): Promise<void> | undefined {
    if (this.failed) throw this.failed;
    const text = JSON.stringify(rec) + '\n';
    this.batch.push(text);
    this.batched += text.length;
    return this.batched >= LINE_BATCH ? this.flush() : undefined;
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const text = this.batch.join('');
    this.batch = [];
    this.batched = 0;
    if (!this.gz.write(text)) {
      // Whichever comes first; the other listener goes too (a layer waits here hundreds of times).
      await new Promise<void>((resolve) => {
        const done = () => {
          this.gz.off('drain', done);
          this.out.off('close', done);
          resolve();
        };
        this.gz.on('drain', done);
        this.out.on('close', done);
      });
      if (this.failed) throw this.failed;
    }
  }

  async segment(raw: Buffer): Promise<void> {
    if (raw.length > 0) await this.line({ s: raw.toString('base64') });
  }

  /** Returns the record's number, which a superseded file is filed under. */
  async content(path: string, size: number): Promise<number> {
    const k = this.k++;
    await this.line({ p: path, n: size, k });
    return k;
  }

  async close(): Promise<void> {
    if (this.failed) throw this.failed;
    await this.flush();
    this.gz.end();
    await finished(this.out);
    if (this.failed) throw this.failed;
  }

  destroy(): void {
    this.gz.unpipe(this.out);
    this.gz.destroy();
    this.out.destroy();
  }
}

export async function* readSplit(path: string): AsyncGenerator<SplitRecord> {
  const lines = createReadStream(path).pipe(createGunzip());
  let buf = '';
  for await (const chunk of lines) {
    buf += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line) as SplitRecord;
    }
  }
}

/** The rebuilt tar's length, from the records alone (docker save needs it before the bytes). */
export async function splitTarSize(path: string): Promise<number> {
  let n = 0;
  for await (const rec of readSplit(path)) n += 's' in rec ? Buffer.byteLength(rec.s, 'base64') : rec.n;
  return n;
}

/**
 * The layer's original tar as a stream. `superseded` maps record numbers of
 * files that a later entry of the same tar overwrote to where their bytes were kept.
 */
export function rebuildTar(splitPath: string, diffDir: string, superseded: Record<string, string>, layerDir: string): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for await (const rec of readSplit(splitPath)) {
      if ('s' in rec) {
        yield Buffer.from(rec.s, 'base64');
        continue;
      }
      const moved = superseded[String(rec.k)];
      const file = moved ? join(layerDir, moved) : join(diffDir, rec.p);
      const fh = await open(file, 'r').catch((err: Error) => {
        throw new SystemError(`layer content missing: ${rec.p}: ${err.message}`);
      });
      try {
        let left = rec.n;
        let pos = 0;
        while (left > 0) {
          const buf = Buffer.allocUnsafe(Math.min(left, 64 * 1024));
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new SystemError(`layer content truncated: ${rec.p}`);
          pos += bytesRead;
          left -= bytesRead;
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        await fh.close();
      }
    }
  }
  return Readable.from(gen(), { objectMode: false });
}
