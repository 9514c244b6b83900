// Docker's json-file log format: one JSON object per line of output,
// {"log":"hi\n","stream":"stdout","time":"<RFC 3339 nano>"}, with
// max-size/max-file rotation (flash wears out: logs must not grow forever).
import { createReadStream, promises as fs } from 'node:fs';
import { InvalidParameter } from '../errors.js';

export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

export interface JsonLogOptions {
  maxSize: number;
  maxFile: number;
}

/** `max-size` like Docker: a number with an optional k/m/g unit (decimal kB = 1000? Docker uses units.RAMInBytes: 1024). */
/** A log-opt max-size ("10m", "512k", "1.5g", plain bytes) in bytes, as both file drivers read it. */
export function parseLogSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$/i.exec(v.trim());
  if (!m) throw new InvalidParameter(`invalid value for log-opt max-size: ${v}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] as string).toLowerCase()] as number;
  return Math.floor(Number(m[1]) * mult);
}

export function parseLogOpts(opts: Record<string, string>): JsonLogOptions {
  let maxSize = -1;
  let maxFile = 1;
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'max-size') {
      maxSize = parseLogSize(v);
    } else if (k === 'max-file') {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidParameter(`invalid value for log-opt max-file: ${v}`);
      maxFile = Number(v);
    } else if (k === 'compress' || k === 'labels' || k === 'env' || k === 'tag') {
      // accepted, as Docker does; skiff does not add them to the entries
    } else {
      throw new InvalidParameter(`unknown log opt '${k}' for json-file log driver`);
    }
  }
  if (maxFile > 1 && maxSize < 0) throw new InvalidParameter('max-file cannot be set without max-size');
  return { maxSize, maxFile };
}

export function nanoTime(d = new Date(), extraNs = 0): string {
  const iso = d.toISOString(); // ...sss Z
  return `${iso.slice(0, 23)}${String(extraNs).padStart(6, '0')}Z`;
}

/** Appends entries to the log, rotating by size. Writes are serialised. */
export class JsonLogWriter {
  private size = 0;
  private fh: fs.FileHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private seq = 0;

  constructor(
    readonly path: string,
    private readonly opts: JsonLogOptions,
  ) {}

  private async open(): Promise<fs.FileHandle> {
    if (!this.fh) {
      this.fh = await fs.open(this.path, 'a', 0o640);
      this.size = (await this.fh.stat()).size;
    }
    return this.fh;
  }

  write(stream: 'stdout' | 'stderr', data: Buffer): Promise<void> {
    const now = new Date();
    const lines: string[] = [];
    let start = 0;
    const text = data.toString('utf8');
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', start)) {
      lines.push(text.slice(start, i + 1));
      start = i + 1;
    }
    if (start < text.length) lines.push(text.slice(start));
    // Sub-millisecond counter keeps entries of one chunk in order.
    const records = lines.map((l) => Buffer.from(JSON.stringify({ log: l, stream, time: nanoTime(now, this.seq++ % 1_000_000) }) + '\n'));
    this.chain = this.chain.then(() => this.append(records)).catch(() => undefined);
    return this.chain;
  }

  /** Rotation falls between records, so one big burst of output cannot overshoot max-size. */
  private async append(records: Buffer[]): Promise<void> {
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      if (batched === 0) return;
      const fh = await this.open();
      await fh.writev(batch);
      this.size += batched;
      batch = [];
      batched = 0;
    };
    for (const r of records) {
      if (this.opts.maxSize > 0 && this.size + batched + r.length > this.opts.maxSize && this.size + batched > 0) {
        await flush();
        await this.rotate();
        this.size = 0;
      }
      batch.push(r);
      batched += r.length;
    }
    await flush();
  }

  private async rotate(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    if (this.opts.maxFile <= 1) {
      await fs.truncate(this.path, 0).catch(() => undefined);
      return;
    }
    for (let i = this.opts.maxFile - 1; i >= 1; i--) {
      const from = i === 1 ? this.path : `${this.path}.${i - 1}`;
      await fs.rename(from, `${this.path}.${i}`).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = undefined;
  }
}

/** Every entry in the log files, oldest first. */
export async function* readLog(path: string, maxFile: number): AsyncGenerator<LogEntry> {
  const files: string[] = [];
  for (let i = maxFile - 1; i >= 1; i--) files.push(`${path}.${i}`);
  files.push(path);
  for (const f of files) {
    let buf = '';
    try {
      for await (const chunk of createReadStream(f, { encoding: 'utf8' })) {
        buf += chunk as string;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line) yield JSON.parse(line) as LogEntry;
        }
      }
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
  }
}
