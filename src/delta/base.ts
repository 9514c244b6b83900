// The delta base: the concatenated tars of every layer of the base image,
// exactly as their DiffIDs hash them, read at random offsets. The tars are
// never stored: an index maps each base offset to a tar-split segment (raw
// header and padding bytes, kept in memory) or to a range of a file on disk,
// which is read with positioned reads. Memory is the index only: O(entries).
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SystemError } from '../errors.js';
import type { LayerSplit } from '../store/layers.js';
import { readSplit } from '../store/tarsplit.js';
import type { BaseSource } from './format.js';

interface FilePart {
  path: string;
  size: number;
}

const OPEN_FILES = 16;

export class BaseStream implements BaseSource {
  /** Base offset where part i starts; one more entry holds the total. */
  private starts: number[] = [0];
  private parts: Array<Buffer | FilePart> = [];
  private readonly fds = new Map<string, { fh: Promise<FileHandle>; users: number }>();
  /** Bytes of raw segments held (the index's main cost). */
  segmentBytes = 0;
  /** [start, end) of each layer's tar in the base. */
  readonly layers: Array<[number, number]> = [];

  get size(): number {
    return this.starts[this.starts.length - 1] as number;
  }

  private push(part: Buffer | FilePart, len: number): void {
    if (len === 0) return;
    const last = this.parts[this.parts.length - 1];
    if (Buffer.isBuffer(part) && Buffer.isBuffer(last) && last.length < 64 * 1024) {
      // Adjacent segments (a file's padding, the next header) become one.
      this.parts[this.parts.length - 1] = Buffer.concat([last, part]);
      this.starts[this.starts.length - 1] = this.size + len;
    } else {
      this.parts.push(part);
      this.starts.push(this.size + len);
    }
    if (Buffer.isBuffer(part)) this.segmentBytes += len;
  }

  /** Appends one layer's tar (in base order). */
  async addLayer(l: LayerSplit): Promise<void> {
    const start = this.size;
    for await (const rec of readSplit(l.splitPath)) {
      if ('s' in rec) {
        const b = Buffer.from(rec.s, 'base64');
        this.push(b, b.length);
      } else {
        const moved = l.superseded[String(rec.k)];
        this.push({ path: moved ? join(l.layerDir, moved) : join(l.diffDir, rec.p), size: rec.n }, rec.n);
      }
    }
    this.layers.push([start, this.size]);
  }

  /**
   * An open handle for `path`, shared: patches of several layers read the base
   * at once, so a handle is only closed (least recently used first) when no
   * read holds it.
   */
  private async withFile<T>(path: string, use: (fh: FileHandle) => Promise<T>): Promise<T> {
    let slot = this.fds.get(path);
    if (slot) {
      this.fds.delete(path);
    } else {
      slot = {
        users: 0,
        fh: open(path, 'r').catch((err: Error) => {
          this.fds.delete(path);
          throw new SystemError(`delta base content missing: ${path}: ${err.message}`);
        }),
      };
    }
    this.fds.set(path, slot);
    slot.users++;
    try {
      return await use(await slot.fh);
    } finally {
      slot.users--;
      if (this.fds.size > OPEN_FILES) {
        for (const [p, s] of this.fds) {
          if (this.fds.size <= OPEN_FILES) break;
          if (s.users > 0) continue;
          this.fds.delete(p);
          await (await s.fh.catch(() => undefined))?.close();
        }
      }
    }
  }

  /** Index of the part holding base offset `off`. */
  private find(off: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] as number) <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async read(offset: number, len: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(len);
    await this.readInto(out, offset, len);
    return out;
  }

  async readInto(out: Buffer, offset: number, len: number): Promise<void> {
    if (offset < 0 || offset + len > this.size) throw new SystemError(`delta base read ${offset}+${len} is outside the base (${this.size} bytes)`);
    let done = 0;
    let i = this.find(offset);
    while (done < len) {
      const part = this.parts[i] as Buffer | FilePart;
      const start = this.starts[i] as number;
      const inPart = offset + done - start;
      const partLen = (this.starts[i + 1] as number) - start;
      const n = Math.min(len - done, partLen - inPart);
      if (Buffer.isBuffer(part)) {
        part.copy(out, done, inPart, inPart + n);
      } else {
        await this.withFile(part.path, async (fh) => {
          for (let got = 0; got < n; ) {
            const { bytesRead } = await fh.read(out, done + got, n - got, inPart + got);
            if (bytesRead === 0) throw new SystemError(`delta base content truncated: ${part.path}`);
            got += bytesRead;
          }
        });
      }
      done += n;
      i++;
    }
  }

  /** The whole base (or the range [from, to)), in order. */
  async *stream(chunk = 1 << 20, from = 0, to = this.size): AsyncGenerator<Buffer> {
    for (let off = from; off < to; off += chunk) yield await this.read(off, Math.min(chunk, to - off));
  }

  async close(): Promise<void> {
    const all = [...this.fds.values()];
    this.fds.clear();
    await Promise.all(all.map(async (s) => (await s.fh.catch(() => undefined))?.close()));
  }
}

/** The base stream of an image whose layers (bottom first) are described by `splits`. */
export async function openBase(splits: LayerSplit[]): Promise<BaseStream> {
  const b = new BaseStream();
  try {
    for (const s of splits) await b.addLayer(s);
  } catch (err) {
    await b.close();
    throw err;
  }
  return b;
}
