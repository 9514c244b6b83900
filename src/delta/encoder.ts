// skiff's delta encoder. librsync (and so balenaEngine) only finds whole
// 512-byte blocks of the base; here a sparse index of the base finds a
// candidate and the match is then extended byte by byte both ways, so a
// change costs about its own size, not the blocks around it. The output is
// plain librsync format: `rdiff patch` and balenaEngine apply it.
import { copyCommand, endCommand, literalCommand, magicBytes, type BaseSource } from './format.js';
import { BaseIndex, IndexBuilder, roll, strideFor, WINDOW, windowHash } from './index.js';

/** A match shorter than this costs more as a COPY than as literal bytes. */
const MIN_MATCH = 24;
/** Target bytes kept ahead of the scan, so forward extension rarely stops at a chunk edge. */
const LOOKAHEAD = 256 * 1024;
/** Literal bytes are flushed once this many are pending. */
const MAX_LITERAL = 256 * 1024;
const BLOCK = 64 * 1024;

/** The base seen through a few cached blocks: candidates cluster, so most reads are hits. */
class CachedBase {
  /** Block number → its bytes; an evicted block's buffer is reused for the next miss. */
  private readonly blocks = new Map<number, Buffer>();
  constructor(private readonly base: BaseSource) {}

  get size(): number {
    return this.base.size;
  }

  async block(n: number): Promise<Buffer> {
    const hit = this.blocks.get(n);
    if (hit) {
      this.blocks.delete(n);
      this.blocks.set(n, hit);
      return hit;
    }
    const start = n * BLOCK;
    let buf: Buffer;
    if (this.blocks.size >= 16) {
      const [old, b] = this.blocks.entries().next().value as [number, Buffer];
      this.blocks.delete(old);
      buf = Buffer.from(b.buffer, b.byteOffset, BLOCK);
    } else {
      buf = Buffer.allocUnsafe(BLOCK);
    }
    const len = Math.min(BLOCK, this.base.size - start);
    await this.base.readInto(buf, start, len);
    const b = buf.subarray(0, len);
    this.blocks.set(n, b);
    return b;
  }

  /** How many bytes of `t` from `ti` on equal the base from `bo` on (up to `max`). */
  async forward(t: Buffer, ti: number, bo: number, max: number): Promise<number> {
    let n = 0;
    max = Math.min(max, this.size - bo, t.length - ti);
    while (n < max) {
      const off = bo + n;
      const blk = await this.block(Math.floor(off / BLOCK));
      const inBlk = off % BLOCK;
      const len = Math.min(blk.length - inBlk, max - n);
      const a = t.subarray(ti + n, ti + n + len);
      const b = blk.subarray(inBlk, inBlk + len);
      if (a.equals(b)) {
        n += len;
        continue;
      }
      let i = 0;
      while (a[i] === b[i]) i++;
      return n + i;
    }
    return n;
  }

  /** How many bytes before `ti` in `t` equal the bytes before `bo` in the base (up to `max`). */
  async backward(t: Buffer, ti: number, bo: number, max: number): Promise<number> {
    let n = 0;
    max = Math.min(max, bo, ti);
    while (n < max) {
      const off = bo - n - 1;
      const blk = await this.block(Math.floor(off / BLOCK));
      const inBlk = off % BLOCK;
      const len = Math.min(inBlk + 1, max - n);
      for (let i = 0; i < len; i++) {
        if (t[ti - n - 1] !== blk[inBlk - i]) return n;
        n++;
      }
    }
    return n;
  }
}

/**
 * Encodes one target stream against the base. `write` gets the delta in
 * order and may apply backpressure by returning a promise.
 */
export class DeltaEncoder {
  private readonly base: CachedBase;
  /** Pending target bytes: win[0] is the first byte not yet encoded. */
  private win: Buffer = Buffer.alloc(0);
  private scan = 0;
  private hash = 0;
  private hashAt = NaN;
  /** A COPY not yet written, so the next one can extend it. */
  private pending: { off: number; len: number } | undefined;

  constructor(
    base: BaseSource,
    private readonly index: BaseIndex,
    private readonly write: (b: Buffer) => void | Promise<void>,
  ) {
    this.base = new CachedBase(base);
  }

  async start(): Promise<void> {
    await this.write(magicBytes());
  }

  /** Chunks not yet joined to `win` (joining on every chunk would copy the window each time). */
  private incoming: Buffer[] = [];
  private incomingBytes = 0;

  private join(): void {
    if (this.incoming.length === 0) return;
    this.win = Buffer.concat([this.win, ...this.incoming]);
    this.incoming = [];
    this.incomingBytes = 0;
  }

  async push(chunk: Buffer): Promise<void> {
    this.incoming.push(chunk);
    this.incomingBytes += chunk.length;
    if (this.win.length + this.incomingBytes - this.scan >= LOOKAHEAD * 2) {
      this.join();
      await this.run(false);
    }
  }

  async end(): Promise<void> {
    this.join();
    await this.run(true);
    await this.flushLiteral(this.win.length);
    await this.flushCopy();
    await this.write(endCommand());
  }

  private async flushCopy(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    await this.write(copyCommand(p.off, p.len));
  }

  /** Writes win[0, n) as a literal. */
  private async flushLiteral(n: number): Promise<void> {
    if (n <= 0) return;
    await this.flushCopy();
    await this.write(literalCommand(n));
    await this.write(Buffer.from(this.win.subarray(0, n)));
    this.win = this.win.subarray(n);
    this.scan -= n;
    this.hashAt -= n;
  }

  private async copy(litEnd: number, off: number, len: number): Promise<void> {
    await this.flushLiteral(litEnd);
    const p = this.pending;
    if (p && p.off + p.len === off) p.len += len;
    else {
      await this.flushCopy();
      this.pending = { off, len };
    }
    this.win = this.win.subarray(len);
    this.scan = 0;
    this.hashAt = NaN;
  }

  private async run(final: boolean): Promise<void> {
    for (;;) {
      // First: does the previous COPY simply go on?
      const p = this.pending;
      if (p && this.scan === 0 && this.win.length > 0) {
        const n = await this.base.forward(this.win, 0, p.off + p.len, this.win.length);
        if (n > 0) {
          p.len += n;
          this.win = this.win.subarray(n);
          this.hashAt = NaN;
          if (this.win.length === 0) return;
        }
      }
      if (!(await this.scanForMatch(final))) return;
    }
  }

  /** Rolls over the target until a match is taken (true) or the data in hand runs out (false). */
  private async scanForMatch(final: boolean): Promise<boolean> {
    for (;;) {
      const w = this.win;
      const last = (final ? w.length : w.length - LOOKAHEAD) - WINDOW;
      let s = this.scan;
      if (s > last) return false;
      let h = this.hashAt === s ? this.hash : this.hashAt === s - 1 ? roll(this.hash, w[s - 1] as number, w[s + WINDOW - 1] as number) : windowHash(w, s);
      let cand = this.index.find(h);
      while (cand < 0 && s < last && s < MAX_LITERAL) {
        h = roll(h, w[s] as number, w[s + WINDOW] as number);
        s++;
        cand = this.index.find(h);
      }
      this.scan = s;
      this.hash = h;
      this.hashAt = s;
      if (cand >= 0 && (await this.tryMatch(cand))) return true;
      this.scan++;
      if (this.scan >= MAX_LITERAL) await this.flushLiteral(this.scan - WINDOW);
    }
  }

  /** Takes the best match at the scan position, if one is long enough. */
  private async tryMatch(cand: number): Promise<boolean> {
    const w = this.win;
    const at = this.scan;
    const options = [cand];
    // Where the base would be if the last COPY had continued through the literal since:
    // changed tar headers (mtime, checksum) sit between runs of the same file.
    const p = this.pending;
    if (p && p.off + p.len + at !== cand && p.off + p.len + at < this.base.size) options.push(p.off + p.len + at);
    let best: { start: number; off: number; len: number } | undefined;
    for (const bo of options) {
      const fwd = await this.base.forward(w, at, bo, w.length - at);
      if (fwd < WINDOW && bo === cand) continue;
      const back = await this.base.backward(w, at, bo, at);
      const len = back + fwd;
      if (len >= MIN_MATCH && (!best || len > best.len)) best = { start: at - back, off: bo - back, len };
    }
    if (!best) return false;
    await this.copy(best.start, best.off, best.len);
    return true;
  }
}

/** Index + encode in one go. */
export async function encodeDelta(
  base: BaseSource,
  target: AsyncIterable<Buffer>,
  write: (b: Buffer) => void | Promise<void>,
  index?: BaseIndex,
): Promise<void> {
  const idx = index ?? (await indexBase(base));
  const enc = new DeltaEncoder(base, idx, write);
  await enc.start();
  for await (const c of target) await enc.push(c);
  await enc.end();
}

/** Streams the base through a new index, through one reused buffer. */
export async function indexBase(base: BaseSource): Promise<BaseIndex> {
  const idx = new BaseIndex(base.size, strideFor(base.size));
  const b = new IndexBuilder(idx);
  const buf = Buffer.allocUnsafe(256 * 1024);
  for (let off = 0; off < base.size; off += buf.length) {
    const n = Math.min(buf.length, base.size - off);
    await base.readInto(buf, off, n);
    b.push(buf.subarray(0, n));
  }
  return idx;
}
