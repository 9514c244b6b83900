// Applying one layer tar to an empty layer directory in overlay2's format,
// safely: hostile archives must not write outside the directory (through
// `..`, absolute paths, symlinked parents or hardlinks), and every byte that
// is not file content is recorded so the tar can be rebuilt exactly.
import * as fsSync from 'node:fs';
import { constants, promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { InvalidParameter } from '../errors.js';
import type { TarEntry } from '../archive/reader.js';
import type { TarHeader } from '../archive/header.js';
import type { SpecialFiles } from './special.js';
import type { TarSplitWriter } from './tarsplit.js';
import { writeFileDirect } from './directio.js';
import type { Pacer } from './writeback.js';

const WHITEOUT = '.wh.';
/** What makes a name need the slow path: a leading "/", "//", or a "." or ".." part. */
const CLEAN = /^\/|\/\/|(^|\/)\.\.?(\/|$)/;
const OPAQUE = '.wh..wh..opq';
/**
 * File content is gathered up to this much before one writev; files up to
 * this size are written in one go. A batch pins its gunzip chunks while the
 * write is in flight, and a chunk that outlives a scavenge is freed only by a
 * full GC: 256 KiB took ~1.5 MB off a pull's peak RSS compared with 1 MiB.
 */
const WRITE_BATCH = 256 * 1024;
/** Files from this size on bypass the page cache (see directio.ts); below it the extra descriptor costs more than it saves. */
const DIRECT_MIN = 64 * 1024;
// Metadata calls (mkdir, symlink, chown, utimes) and small files use the
// synchronous API on purpose: each takes microseconds, while a trip through
// libuv's thread pool costs two thread hand-offs, which dominated the CPU
// time of pulls with many small files. Big files stay asynchronous.
/** The process umask, read once: permission bits it would strip need an explicit chmod. */
const UMASK = process.umask();

type Kind = 'dir' | 'file' | 'symlink' | 'other' | 'whiteout';

export interface ExtractTarget {
  /** The empty directory that becomes the layer's `diff`. */
  diffDir: string;
  /** Where bytes of files overwritten later in the same tar are kept (for the rebuild). */
  keepDir: string;
  /** Told about every byte written, to keep dirty page cache bounded. */
  pacer?: Pacer;
}

export interface ExtractStats {
  /**
   * The layer's size as Docker counts it (du of the diff without directories:
   * regular files once per inode, plus symlink target lengths).
   */
  contentBytes: number;
  entries: number;
  superseded: Record<string, string>;
}

/** Normalises an entry name to a path relative to the layer root ('' = the root itself). */
export function entryPath(name: string): string {
  // Most names are already clean ("a/b/c" or "a/b/"): no empty, "." or ".." part.
  if (!CLEAN.test(name) && !name.includes('\0')) return name.endsWith('/') ? name.slice(0, -1) : name;
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new InvalidParameter(`invalid tar entry ${JSON.stringify(name)}: path escapes the layer`);
    parts.push(part);
  }
  const p = parts.join('/');
  if (p.includes('\0')) throw new InvalidParameter(`invalid tar entry ${JSON.stringify(name)}: NUL in path`);
  return p;
}

export async function extractLayer(
  entries: AsyncIterable<TarEntry>,
  target: ExtractTarget,
  split: TarSplitWriter,
  special: SpecialFiles,
): Promise<ExtractStats> {
  const kinds = new Map<string, Kind>([['', 'dir']]);
  const dirTimes: Array<[string, number]> = [];
  const lastContent = new Map<string, number>();
  /** Bytes each path adds to the size, so a replaced path stops counting. */
  const sizes = new Map<string, number>();
  const stats: ExtractStats = { contentBytes: 0, entries: 0, superseded: {} };
  // rel is clean (entryPath): plain concatenation is the join.
  const abs = (rel: string) => (rel === '' ? target.diffDir : `${target.diffDir}/${rel}`);
  async function ensureParents(rel: string): Promise<void> {
    const slash = rel.lastIndexOf('/');
    if (slash < 0) return;
    const parent = rel.slice(0, slash);
    // A directory in `kinds` has all its parents there too: clear() drops a subtree together.
    if (kinds.get(parent) === 'dir') return;
    const parts = parent.split('/');
    let cur = '';
    for (const part of parts) {
      cur = cur ? `${cur}/${part}` : part;
      const k = kinds.get(cur);
      if (k === 'dir') continue;
      if (k !== undefined) throw new InvalidParameter(`invalid tar entry: parent ${cur} is not a directory`);
      fsSync.mkdirSync(abs(cur), { mode: 0o755 });
      kinds.set(cur, 'dir');
    }
  }

  async function clear(rel: string, next: Kind): Promise<void> {
    const k = kinds.get(rel);
    if (k === undefined) return;
    if (k === 'dir' && next === 'dir') return;
    if (k === 'whiteout') special.forget(abs(rel));
    stats.contentBytes -= sizes.get(rel) ?? 0;
    sizes.delete(rel);
    if (k === 'dir') {
      await fs.rm(abs(rel), { recursive: true, force: true });
      for (const key of [...kinds.keys()]) if (key.startsWith(rel + '/')) kinds.delete(key);
      for (const [key, n] of [...sizes]) {
        if (key.startsWith(rel + '/')) {
          stats.contentBytes -= n;
          sizes.delete(key);
        }
      }
    } else if (k === 'file' && lastContent.has(rel)) {
      // The earlier content is part of the original tar: keep it for the rebuild.
      const rec = lastContent.get(rel) as number;
      const keep = `${posix.basename(target.keepDir)}/${rec}`;
      await fs.mkdir(target.keepDir, { recursive: true });
      await fs.rename(abs(rel), posix.join(target.keepDir, String(rec)));
      stats.superseded[String(rec)] = keep;
      lastContent.delete(rel);
    } else if (k !== 'whiteout') {
      await fs.rm(abs(rel), { force: true });
    }
    kinds.delete(rel);
  }

  for await (const entry of entries) {
    stats.entries++;
    await split.segment(entry.raw);
    const h = entry.header;
    const rel = entryPath(h.name);
    const base = posix.basename(rel);

    if (base.startsWith(WHITEOUT)) {
      await drainEmpty(entry);
      const dir = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
      await ensureParents(rel);
      if (base === OPAQUE) {
        special.setxattr(abs(dir), 'trusted.overlay.opaque', Buffer.from('y'));
      } else {
        const hidden = dir ? `${dir}/${base.slice(WHITEOUT.length)}` : base.slice(WHITEOUT.length);
        if (hidden === '' || base.slice(WHITEOUT.length).startsWith(WHITEOUT)) {
          throw new InvalidParameter(`invalid whiteout entry ${JSON.stringify(h.name)}`);
        }
        await clear(hidden, 'whiteout');
        special.mknod(abs(hidden), 'c', 0, 0, 0, h.uid, h.gid);
        kinds.set(hidden, 'whiteout');
      }
      continue;
    }

    if (rel === '') {
      if (h.type !== 'directory') throw new InvalidParameter(`invalid tar entry ${JSON.stringify(h.name)}: the layer root must be a directory`);
      await drainEmpty(entry);
      applyMeta(abs(''), h, false);
      dirTimes.push(['', h.mtime]);
      continue;
    }
    await ensureParents(rel);
    const path = abs(rel);

    switch (h.type) {
      case 'directory': {
        await drainEmpty(entry);
        await clear(rel, 'dir');
        if (!kinds.has(rel)) fsSync.mkdirSync(path, { mode: 0o700 });
        kinds.set(rel, 'dir');
        applyMeta(path, h, false);
        dirTimes.push([rel, h.mtime]);
        break;
      }
      case 'file': {
        await clear(rel, 'file');
        const k = h.size > 0 ? await split.content(rel, h.size) : undefined;
        const n = await writeFile(path, entry, h, target.pacer);
        stats.contentBytes += n;
        sizes.set(rel, n);
        kinds.set(rel, 'file');
        if (k !== undefined) lastContent.set(rel, k);
        break;
      }
      case 'symlink': {
        await drainEmpty(entry);
        await clear(rel, 'symlink');
        fsSync.symlinkSync(h.linkname, path);
        kinds.set(rel, 'symlink');
        sizes.set(rel, Buffer.byteLength(h.linkname));
        stats.contentBytes += Buffer.byteLength(h.linkname);
        applyMeta(path, h, true);
        break;
      }
      case 'link': {
        await drainEmpty(entry);
        const targetRel = entryPath(h.linkname);
        const tk = kinds.get(targetRel);
        if (tk === undefined || tk === 'dir' || tk === 'whiteout') {
          throw new InvalidParameter(`invalid hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}: target is not a file of this layer`);
        }
        if (targetRel === rel) break;
        await clear(rel, tk);
        fsSync.linkSync(abs(targetRel), path);
        kinds.set(rel, tk);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        await drainEmpty(entry);
        await clear(rel, 'other');
        special.mknod(path, h.type === 'char' ? 'c' : h.type === 'block' ? 'b' : 'p', h.devmajor, h.devminor, h.mode, h.uid, h.gid);
        kinds.set(rel, 'other');
        break;
      }
      default:
        throw new InvalidParameter(`unsupported tar entry type for ${JSON.stringify(h.name)}`);
    }
    for (const [name, value] of h.xattrs) special.setxattr(path, name, value);
  }
  await special.flush();
  // Directory times last: creating children changed them.
  for (const [rel, mtime] of dirTimes.reverse()) {
    if (kinds.get(rel) === 'dir') fsSync.utimesSync(abs(rel), mtime, mtime);
  }
  return stats;
}

async function drainEmpty(entry: TarEntry): Promise<void> {
  for await (const _ of entry.body) void _;
}

/** Writes a regular file with its metadata in as few calls as possible: small files are the common case. */
async function writeFile(path: string, entry: TarEntry, h: TarHeader, pacer: ExtractTarget['pacer']): Promise<number> {
  const mode = h.mode & 0o7777;
  if (h.size >= DIRECT_MIN) {
    const d = await writeFileDirect(path, entry.body, mode, pacer);
    if (d) {
      try {
        if (d.written !== h.size) throw new InvalidParameter(`archive/tar: short file content for ${h.name}`);
        setMeta(d.fd, h, mode);
      } finally {
        fsSync.closeSync(d.fd);
      }
      return d.written;
    }
  }
  if (h.size <= WRITE_BATCH) {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of entry.body) {
      chunks.push(chunk);
      n += chunk.length;
    }
    if (n !== h.size) throw new InvalidParameter(`archive/tar: short file content for ${h.name}`);
    const fd = fsSync.openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      let bufs = chunks;
      while (bufs.length > 0) bufs = advance(bufs, fsSync.writevSync(fd, bufs));
      setMeta(fd, h, mode);
    } finally {
      fsSync.closeSync(fd);
    }
    if (n > 0) await pacer?.wrote(n);
    return n;
  }
  const fh = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  let written = 0;
  try {
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      let bufs = batch;
      batch = [];
      batched = 0;
      while (bufs.length > 0) {
        const { bytesWritten } = await fh.writev(bufs);
        bufs = advance(bufs, bytesWritten);
      }
    };
    for await (const chunk of entry.body) {
      batch.push(chunk);
      batched += chunk.length;
      written += chunk.length;
      if (batched >= WRITE_BATCH) {
        const n = batched;
        await flush();
        await pacer?.wrote(n);
      }
    }
    if (batched > 0) {
      const n = batched;
      await flush();
      await pacer?.wrote(n);
    }
    if (written !== h.size) throw new InvalidParameter(`archive/tar: short file content for ${h.name}`);
    setMeta(fh.fd, h, mode);
  } finally {
    await fh.close();
  }
  return written;
}

/** Ownership, mode and times of a file created by root with `mode`: only what differs needs a call. */
function setMeta(fd: number, h: TarHeader, mode: number): void {
  if (h.uid !== 0 || h.gid !== 0) fsSync.fchownSync(fd, h.uid, h.gid);
  if ((mode & UMASK) !== 0 || h.uid !== 0 || h.gid !== 0) fsSync.fchmodSync(fd, mode);
  fsSync.futimesSync(fd, h.mtime, h.mtime);
}

/** Drops `n` written bytes from the front of a buffer list. */
function advance(bufs: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= (bufs[i] as Buffer).length) n -= (bufs[i++] as Buffer).length;
  const rest = bufs.slice(i);
  if (n > 0 && rest[0]) rest[0] = rest[0].subarray(n);
  return rest;
}

function applyMeta(path: string, h: TarHeader, isLink: boolean): void {
  fsSync.lchownSync(path, h.uid, h.gid);
  if (!isLink) fsSync.chmodSync(path, h.mode & 0o7777);
  fsSync.lutimesSync(path, h.mtime, h.mtime);
}
