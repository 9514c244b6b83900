// Writing the bodies of larger files with O_DIRECT, so their bytes never sit
// in the page cache as dirty pages. Why: a pull must keep dirty memory small
// (flash is slow and a power cut loses it), and the only way Node has to force
// writeback is a whole-filesystem sync. Each such sync also writes out the
// inode tables, bitmaps and directory blocks being filled, which the next
// files make dirty (and count as written) again. With the large bodies going
// straight to the disk, the pacer only has small files and metadata left to
// sync, a few times per pull instead of every few MiB. A commit's sync still makes it all
// durable: O_DIRECT skips the cache, not the need to flush the disk.
//
// O_DIRECT wants the buffer address, the file offset and the length aligned.
// The aligned part of a file goes through an O_DIRECT descriptor from page
// aligned memory (a WebAssembly.Memory is allocated by whole pages); the
// unaligned tail goes through a second, ordinary descriptor. A filesystem
// without O_DIRECT (EINVAL) turns it off for the process and the file is
// finished through the page cache.
import { closeSync, constants, openSync, rmSync, write, writeSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import type { Pacer } from './writeback.js';

/** Offsets and lengths are multiples of this: the largest logical block size in use. */
const ALIGN = 4096;
/** One write's worth; two per file are in use, one filling while the other is written. */
const SLAB = 256 * 1024;
/** Slabs kept for reuse; more are made when several layers extract at once. */
const POOL_MAX = 6; // two per layer, three layers at once by default

// Node's types leave WebAssembly to the DOM library; only its page-allocated memory is used here.
declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

const O_DIRECT: number | undefined = (constants as Record<string, number | undefined>).O_DIRECT;
let usable = O_DIRECT !== undefined && process.env.SKIFF_DIRECT_IO !== '0';
const pool: Buffer[] = [];

/** Whether file bodies are written with O_DIRECT (false once the filesystem refused it). */
export function directIoEnabled(): boolean {
  return usable;
}

/** Turns O_DIRECT off (or back on, where the platform has it); tests use this for the fallback path. */
export function setDirectIo(on: boolean): void {
  usable = on && O_DIRECT !== undefined;
}

/** Page-aligned memory, or undefined where WebAssembly is missing (--jitless) or out of memory. */
function takeSlab(): Buffer | undefined {
  const b = pool.pop();
  if (b) return b;
  try {
    return Buffer.from(new WebAssembly.Memory({ initial: SLAB / 65536, maximum: SLAB / 65536 }).buffer);
  } catch {
    return undefined;
  }
}

function giveSlab(b: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(b);
}

function writeAt(fd: number, buf: Buffer, len: number, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number): void => {
      write(fd, buf, off, len - off, pos + off, (err, n) => {
        if (err) reject(err);
        else if (off + n >= len) resolve();
        else step(off + n);
      });
    };
    step(0);
  });
}

export interface DirectWrite {
  /** The descriptor to set ownership, mode and times on; the caller closes it. */
  fd: number;
  /** Bytes of content written. */
  written: number;
}

/**
 * Creates `path` (O_EXCL, O_NOFOLLOW) and writes `body` into it. Returns
 * undefined, having created nothing and read nothing, when O_DIRECT is off.
 * The pacer is told about every byte, and how it was written.
 */
export async function writeFileDirect(
  path: string,
  body: AsyncIterable<Buffer>,
  mode: number,
  pacer?: Pacer,
): Promise<DirectWrite | undefined> {
  if (!usable || O_DIRECT === undefined) return undefined;
  const a = takeSlab();
  const b = a && takeSlab();
  if (!a || !b) {
    if (a) giveSlab(a);
    return undefined; // this file through the page cache
  }
  const slabs = [a, b] as const;
  const base = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  let fd: number;
  try {
    fd = openSync(path, base | O_DIRECT, mode);
  } catch (err) {
    for (const s of slabs) giveSlab(s);
    if (errnoCode(err) !== 'EINVAL') throw err;
    // The inode may exist already: Linux checks O_DIRECT support after creating it.
    usable = false;
    rmSync(path, { force: true });
    return undefined;
  }
  /** An ordinary descriptor for the tail, and for everything once O_DIRECT failed. */
  let plain: number | undefined;
  let inflight: Promise<void> | undefined;
  try {
    let pos = 0;
    const put = (buf: Buffer, len: number): Promise<void> => {
      const at = pos;
      pos += len;
      const p = (async () => {
        if (plain === undefined) {
          try {
            await writeAt(fd, buf, len, at);
            await pacer?.wroteDirect(len);
            return;
          } catch (err) {
            if (errnoCode(err) !== 'EINVAL') throw err;
            usable = false;
            plain = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
          }
        }
        await writeAt(plain, buf, len, at);
        await pacer?.wrote(len);
      })();
      p.catch(() => undefined); // awaited before the next write, or in finally
      return p;
    };
    let cur = 0;
    let fill = 0;
    let written = 0;
    for await (const chunk of body) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(chunk.length - off, SLAB - fill);
        chunk.copy(slabs[cur] as Buffer, fill, off, off + n);
        fill += n;
        off += n;
        written += n;
        if (fill === SLAB) {
          await inflight;
          inflight = put(slabs[cur] as Buffer, SLAB);
          cur ^= 1;
          fill = 0;
        }
      }
    }
    await inflight;
    inflight = undefined;
    const last = slabs[cur] as Buffer;
    const aligned = fill - (fill % ALIGN);
    if (aligned > 0) await put(last, aligned);
    if (fill > aligned) {
      plain ??= openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
      for (let off = aligned; off < fill; ) off += writeSync(plain, last, off, fill - off, pos + off - aligned);
      await pacer?.wrote(fill - aligned);
    }
    return { fd, written };
  } catch (err) {
    await inflight?.catch(() => undefined); // its buffer and descriptor are still in use
    inflight = undefined;
    closeSync(fd);
    throw err;
  } finally {
    // Both ways out have awaited the write in flight: its slab can go back.
    if (plain !== undefined) closeSync(plain);
    for (const s of slabs) giveSlab(s);
  }
}
