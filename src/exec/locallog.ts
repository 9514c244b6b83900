// The `local` log driver: compact binary records instead of a JSON line per
// output line, rotated at max-size (default 20m) into max-file files
// (default 5), rotated files gzip-compressed unless compress=false. Like
// Docker's local driver in behaviour; the record format is skiff's own:
//
//   file   := "SKLG" u32be(1) record*
//   record := u32be(n) u8(stream: 1 stdout, 2 stderr) u64be(time, ns since the epoch) line u32be(n)
//
// n is the length of stream+time+line. The trailing length lets a writer that
// reopens the file check the last record in O(1); a torn record (the machine
// died mid-write) is cut off then. Files: container.log, container.log.1.gz
// (newest rotated) ... container.log.<max-file - 1>.gz.
//
// Recovery when a writer opens: a leftover compression temp file goes; a
// rotated file that exists both plain and compressed was compressed to the
// end (the .gz is renamed into place before the plain one is removed), so the
// plain one goes.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { InvalidParameter } from '../errors.js';
import { nanoTime, parseLogSize, type LogEntry } from './jsonlog.js';

export interface LocalLogOptions {
  maxSize: number;
  maxFile: number;
  compress: boolean;
}

const MAGIC = Buffer.from('SKLG\x00\x00\x00\x01', 'latin1');
const FIXED = 1 + 8;
/** A line longer than this is not a record of ours: the file is damaged from there on. */
const MAX_RECORD = 16 * 1024 * 1024;

/** Docker's local driver options and defaults. */
export function parseLocalLogOpts(opts: Record<string, string>): LocalLogOptions {
  const out: LocalLogOptions = { maxSize: 20 * 1024 * 1024, maxFile: 5, compress: true };
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'max-size') {
      out.maxSize = parseLogSize(v);
      if (out.maxSize <= 0) throw new InvalidParameter(`max-size must be a positive number`);
    } else if (k === 'max-file') {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidParameter(`max-file must be a positive number`);
      out.maxFile = Number(v);
    } else if (k === 'compress') {
      if (!['true', 'false', '1', '0'].includes(v)) throw new InvalidParameter(`invalid value for log-opt compress: ${v}`);
      out.compress = v === 'true' || v === '1';
    } else {
      throw new InvalidParameter(`unknown log opt '${k}' for log driver local`);
    }
  }
  return out;
}

function encode(stream: 'stdout' | 'stderr', ns: bigint, line: Buffer): Buffer {
  const n = FIXED + line.length;
  const b = Buffer.allocUnsafe(8 + n);
  b.writeUInt32BE(n, 0);
  b[4] = stream === 'stdout' ? 1 : 2;
  b.writeBigUInt64BE(ns, 5);
  line.copy(b, 4 + FIXED);
  b.writeUInt32BE(n, 4 + n);
  return b;
}

/** Appends records; writes are serialised and rotation happens between them. */
export class LocalLogWriter {
  private fh: fs.FileHandle | undefined;
  private size = 0;
  private chain: Promise<void> = Promise.resolve();
  private compressing: Promise<void> = Promise.resolve();
  private seq = 0;
  private recovered = false;

  constructor(
    readonly path: string,
    private readonly opts: LocalLogOptions,
  ) {}

  private rotated(i: number, gz: boolean): string {
    return `${this.path}.${i}${gz ? '.gz' : ''}`;
  }

  private async open(): Promise<fs.FileHandle> {
    if (this.fh) return this.fh;
    if (!this.recovered) {
      // Once, before the first write: later opens (after a rotation) run while a compression may be going on.
      await fs.mkdir(posix.dirname(this.path), { recursive: true, mode: 0o700 });
      await this.recover();
      this.recovered = true;
    }
    const fh = await fs.open(this.path, 'a+', 0o640);
    let size = (await fh.stat()).size;
    if (size === 0) {
      await fh.write(MAGIC);
      size = MAGIC.length;
    } else size = await validEnd(fh, size);
    this.fh = fh;
    this.size = size;
    return fh;
  }

  private async recover(): Promise<void> {
    const dir = posix.dirname(this.path);
    const base = posix.basename(this.path);
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(`${base}.`) && name.endsWith('.tmp')) await fs.rm(posix.join(dir, name), { force: true });
    }
    for (let i = 1; i < this.opts.maxFile; i++) {
      const gz = await fs.stat(this.rotated(i, true)).catch(() => undefined);
      if (gz) await fs.rm(this.rotated(i, false), { force: true });
    }
  }

  write(stream: 'stdout' | 'stderr', data: Buffer): Promise<void> {
    const ms = BigInt(Date.now());
    const parts: Buffer[] = [];
    let start = 0;
    for (let i = data.indexOf(0x0a); i !== -1; i = data.indexOf(0x0a, start)) {
      parts.push(encode(stream, ms * 1_000_000n + BigInt(this.seq++ % 1_000_000), data.subarray(start, i + 1)));
      start = i + 1;
    }
    if (start < data.length) parts.push(encode(stream, ms * 1_000_000n + BigInt(this.seq++ % 1_000_000), data.subarray(start)));
    this.chain = this.chain.then(() => this.append(parts)).catch(() => undefined);
    return this.chain;
  }

  /** Writes the records in as few writes as possible, rotating between records where max-size says so. */
  private async append(records: Buffer[]): Promise<void> {
    let i = 0;
    while (i < records.length) {
      const fh = await this.open();
      const batch: Buffer[] = [];
      let bytes = 0;
      while (i < records.length) {
        const r = records[i] as Buffer;
        const empty = this.size + bytes === MAGIC.length;
        if (!empty && this.size + bytes + r.length > this.opts.maxSize) break;
        batch.push(r);
        bytes += r.length;
        i++;
      }
      if (batch.length > 0) {
        const buf = Buffer.concat(batch, bytes);
        for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
        this.size += bytes;
      }
      if (i < records.length) await this.rotate();
    }
  }

  private async rotate(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    if (this.opts.maxFile <= 1) {
      await fs.truncate(this.path, 0);
      return;
    }
    // The previous compression renames .1 into .1.gz: let it finish before the files shift.
    await this.compressing;
    for (let i = this.opts.maxFile - 1; i >= 2; i--) {
      for (const gz of [true, false]) await fs.rename(this.rotated(i - 1, gz), this.rotated(i, gz)).catch(() => undefined);
      // A file of the other kind left at i would be read as newer than it is.
      for (const gz of [true, false]) {
        if (await exists(this.rotated(i, gz))) {
          await fs.rm(this.rotated(i, !gz), { force: true });
          break;
        }
      }
    }
    await fs.rm(this.rotated(1, true), { force: true });
    await fs.rename(this.path, this.rotated(1, false));
    if (this.opts.compress) this.compressing = compress(this.rotated(1, false), this.rotated(1, true)).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.chain;
    await this.compressing;
    await this.fh?.close();
    this.fh = undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

async function compress(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp`;
  await pipeline(createReadStream(from), createGzip(), createWriteStream(tmp, { mode: 0o640 }));
  await fs.rename(tmp, to);
  await fs.rm(from, { force: true });
}

/** The end of the last whole record; a torn one after it is cut off. */
async function validEnd(fh: fs.FileHandle, size: number): Promise<number> {
  const tail = Buffer.alloc(4);
  if (size >= MAGIC.length + 8 + FIXED) {
    await fh.read(tail, 0, 4, size - 4);
    const n = tail.readUInt32BE(0);
    if (n >= FIXED && n <= MAX_RECORD && size - 8 - n >= MAGIC.length) {
      const head = Buffer.alloc(4);
      await fh.read(head, 0, 4, size - 8 - n);
      if (head.readUInt32BE(0) === n) return size;
    }
  }
  // Damaged: walk the records from the start and keep what is whole.
  let end = MAGIC.length;
  for await (const r of records(fh.createReadStream({ start: 0, end: size - 1, autoClose: false }))) end = r.end;
  await fh.truncate(end);
  return end;
}

interface Rec {
  stream: 'stdout' | 'stderr';
  ns: bigint;
  line: Buffer;
  /** Offset just past the record. */
  end: number;
}

/** The records of one file's bytes; stops quietly at a torn or damaged record. */
async function* records(src: AsyncIterable<Buffer>): AsyncGenerator<Rec> {
  let buf: Buffer = Buffer.alloc(0);
  let off = 0;
  let checkedMagic = false;
  for await (const chunk of src) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (!checkedMagic) {
      if (buf.length < MAGIC.length) continue;
      if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return;
      buf = buf.subarray(MAGIC.length);
      off = MAGIC.length;
      checkedMagic = true;
    }
    for (;;) {
      if (buf.length < 4) break;
      const n = buf.readUInt32BE(0);
      if (n < FIXED || n > MAX_RECORD) return;
      if (buf.length < 8 + n) break;
      if (buf.readUInt32BE(4 + n) !== n) return;
      const stream = buf[4] === 1 ? 'stdout' : 'stderr';
      const ns = buf.readBigUInt64BE(5);
      const line = Buffer.from(buf.subarray(4 + FIXED, 4 + n));
      off += 8 + n;
      buf = buf.subarray(8 + n);
      yield { stream, ns, line, end: off };
    }
  }
}

/** Every entry of the local log files, oldest first (rotated files, compressed or not, then the current one). */
export async function* readLocalLog(path: string, maxFile: number): AsyncGenerator<LogEntry> {
  const files: Array<{ path: string; gz: boolean }> = [];
  for (let i = maxFile - 1; i >= 1; i--) {
    if (await exists(`${path}.${i}.gz`)) files.push({ path: `${path}.${i}.gz`, gz: true });
    else if (await exists(`${path}.${i}`)) files.push({ path: `${path}.${i}`, gz: false });
  }
  files.push({ path, gz: false });
  for (const f of files) {
    let src: AsyncIterable<Buffer>;
    try {
      const raw = createReadStream(f.path);
      await new Promise<void>((res, rej) => {
        raw.once('open', () => res());
        raw.once('error', rej);
      });
      src = f.gz ? raw.pipe(createGunzip()) : raw;
    } catch {
      continue; // rotated away meanwhile
    }
    try {
      for await (const r of records(src)) {
        const ms = r.ns / 1_000_000n;
        yield { log: r.line.toString('utf8'), stream: r.stream, time: nanoTime(new Date(Number(ms)), Number(r.ns % 1_000_000n)) };
      }
    } catch {
      // a damaged compressed file: what was read stands
    }
  }
}
