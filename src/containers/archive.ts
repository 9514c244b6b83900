// `docker cp` and `docker export`: a container's files as the container sees
// them (its root filesystem with its volumes, binds and network files over
// it), read into a tar stream or written from one, with moby's rules
// (daemon/archive.go, container/archive.go, pkg/archive at v20.10).
//
// Paths are resolved in the container's path space, never by the host
// kernel: every component is looked up through the mount table and every
// symlink is followed relative to the container's root, so `/evil -> /` or
// `../../..` stay inside. The container may run and change its files while a
// copy goes on: each file opened for reading or created for writing is
// checked, through /proc/self/fd, to be below the root or a mount source
// before a byte moves (a directory swapped for a symlink mid-copy cannot leak
// or plant a file outside; what remains is that an empty directory or a
// metadata change could land where a racing symlink points, as in moby
// before its chroot).
import { constants, promises as fs, type BigIntStats } from 'node:fs';
import { posix } from 'node:path';
import { SystemError } from '../errors.js';
import { readTar } from '../archive/reader.js';
import type { TarHeader } from '../archive/header.js';
import { encodeHeader, padding, tarTrailer, type WriteHeader } from '../archive/writer.js';
import { SpecialFiles } from '../store/special.js';

export interface FsMount {
  /** Where the container sees it (already resolved through the root's symlinks). */
  destination: string;
  /** The host file or directory. */
  source: string;
  readOnly: boolean;
  /** A volume or bind mount (moby's checkIfPathIsInAVolume), not a network file. */
  volume: boolean;
}

/** A container's filesystem view. */
export interface ContainerFs {
  root: string;
  mounts: FsMount[];
  readonlyRootfs: boolean;
  /** Host prefixes an opened file may be under: the root and every mount source. */
  allowed: string[];
}

/** The X-Docker-Container-Path-Stat document (types.ContainerPathStat). */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

const MAX_LINKS = 255;
const CHUNK = 64 * 1024;

/** Builds the view; mount destinations are resolved in the root as the runtime mounted them. */
export async function containerFs(root: string, mounts: Array<Omit<FsMount, 'destination'> & { destination: string }>, readonlyRootfs: boolean): Promise<ContainerFs> {
  const bare: ContainerFs = { root, mounts: [], readonlyRootfs, allowed: [] };
  const out: FsMount[] = [];
  for (const m of mounts) out.push({ ...m, destination: await resolve(bare, m.destination, true) });
  const allowed = [root, ...mounts.map((m) => m.source)];
  return { root, mounts: out, readonlyRootfs, allowed: await Promise.all(allowed.map((a) => fs.realpath(a).catch(() => a))) };
}

/** The mount a container path lies in (the innermost one), if any. */
function mountOf(v: ContainerFs, cpath: string): FsMount | undefined {
  let best: FsMount | undefined;
  for (const m of v.mounts) {
    if (cpath === m.destination || cpath.startsWith(m.destination === '/' ? '/' : `${m.destination}/`)) {
      if (!best || m.destination.length >= best.destination.length) best = m;
    }
  }
  return best;
}

/** The host path of a clean, absolute, resolved container path. */
export function hostPath(v: ContainerFs, cpath: string): string {
  const m = mountOf(v, cpath);
  if (m) return cpath === m.destination ? m.source : posix.join(m.source, cpath.slice(m.destination.length));
  return posix.join(v.root, cpath);
}

/**
 * moby's FollowSymlinkInScope in the container's path space: the clean
 * absolute container path `path` leads to. `followLast`: whether a symlink
 * as the last component is followed too. Missing components end the walk
 * (the rest is joined lexically).
 */
export async function resolve(v: ContainerFs, path: string, followLast: boolean): Promise<string> {
  const parts = path.split('/').filter((x) => x !== '' && x !== '.');
  let cur = '/';
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === '..') {
      cur = posix.dirname(cur);
      continue;
    }
    const cand = posix.join(cur, part);
    if (parts.length === 0 && !followLast) return cand;
    let st;
    try {
      st = await fs.lstat(hostPath(v, cand));
    } catch {
      // Missing: accepted as is, the walk goes on (a later `..` may come back to what exists).
      cur = cand;
      continue;
    }
    if (!st.isSymbolicLink()) {
      cur = cand;
      continue;
    }
    if (++hops > MAX_LINKS) throw new SystemError(`too many links resolving ${path} in the container`);
    const target = await fs.readlink(hostPath(v, cand));
    if (target.startsWith('/')) cur = '/';
    parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return cur;
}

/** The file descriptor's real path must be below the root or a mount source. */
async function checkFd(v: ContainerFs, fh: fs.FileHandle, what: string): Promise<void> {
  const real = await fs.readlink(`/proc/self/fd/${fh.fd}`);
  if (!v.allowed.some((a) => real === a || real.startsWith(a.endsWith('/') ? a : `${a}/`))) {
    throw new SystemError(`${what} moved out of the container's filesystem while being copied`);
  }
}

// ---- stat ------------------------------------------------------------------------

const GO_DIR = 2 ** 31;
const GO_SYMLINK = 2 ** 27;
const GO_DEVICE = 2 ** 26;
const GO_PIPE = 2 ** 25;
const GO_SOCKET = 2 ** 24;
const GO_SETUID = 2 ** 23;
const GO_SETGID = 2 ** 22;
const GO_CHARDEV = 2 ** 21;
const GO_STICKY = 2 ** 20;

/** A stat mode as Go's os.FileMode (what moby puts in the header). */
export function goFileMode(mode: number): number {
  let m = mode & 0o777;
  switch (mode & 0o170000) {
    case 0o060000:
      m += GO_DEVICE;
      break;
    case 0o020000:
      m += GO_DEVICE + GO_CHARDEV;
      break;
    case 0o040000:
      m += GO_DIR;
      break;
    case 0o010000:
      m += GO_PIPE;
      break;
    case 0o120000:
      m += GO_SYMLINK;
      break;
    case 0o140000:
      m += GO_SOCKET;
      break;
  }
  if (mode & 0o4000) m += GO_SETUID;
  if (mode & 0o2000) m += GO_SETGID;
  if (mode & 0o1000) m += GO_STICKY;
  return m;
}

/** Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros dropped), in UTC. */
function goTime(ns: bigint): string {
  const secs = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${new Date(Number(secs) * 1000).toISOString().slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

interface Located {
  /** The container path as asked, absolute, with a trailing "/" or "/." kept (moby's PreserveTrailingDotOrSeparator). */
  absPath: string;
  /** The resolved container path of the resource. */
  cpath: string;
  st: BigIntStats;
}

function absolute(path: string): string {
  const clean = posix.join('/', path);
  if (path.endsWith('/.') && clean !== '/') return `${clean}/.`;
  if (path.endsWith('/') && clean !== '/') return `${clean}/`;
  return clean;
}

/** moby's ResolvePath + Lstat: the directory part is resolved, the last element is not (unless the path ends in / or /.). */
async function locate(v: ContainerFs, path: string): Promise<Located> {
  const absPath = absolute(path);
  const dirLike = absPath.endsWith('/') || absPath.endsWith('/.');
  const cpath = await resolve(v, absPath, dirLike);
  const host = hostPath(v, cpath);
  const st = await fs.lstat(host, { bigint: true });
  if (dirLike && !st.isDirectory()) {
    throw Object.assign(new Error(`lstat ${absPath}: not a directory`), { code: 'ENOTDIR' });
  }
  return { absPath, cpath, st };
}

function baseName(absPath: string): string {
  if (absPath === '/') return '/';
  if (absPath.endsWith('/.')) return '.';
  return posix.basename(absPath);
}

export async function statPath(v: ContainerFs, path: string): Promise<PathStat> {
  return statOf(v, await locate(v, path));
}

async function statOf(v: ContainerFs, { absPath, st }: Located): Promise<PathStat> {
  let linkTarget = '';
  if (st.isSymbolicLink()) linkTarget = await resolve(v, absPath, true);
  return { name: baseName(absPath), size: Number(st.size), mode: goFileMode(Number(st.mode)), mtime: goTime(st.mtimeNs), linkTarget };
}

// ---- reading: a tar of a path --------------------------------------------------------

/** GET /containers/{id}/archive: the stat and the tar (entries named after the path's last element). */
export async function archivePath(v: ContainerFs, path: string): Promise<{ stat: PathStat; tar: AsyncGenerator<Buffer> }> {
  const loc = await locate(v, path);
  const stat = await statOf(v, loc);
  const { absPath, cpath } = loc;
  const base = baseName(absPath);
  // moby's rebase of the root: "/" becomes "" so entries read "/bin/sh", not "//bin/sh".
  const name = base === '/' ? '' : base;
  return { stat, tar: tarTree(v, cpath, name, true) };
}

/** GET /containers/{id}/export: the whole root filesystem, entries relative to it, no root entry (moby's containerExport). */
export function exportTree(root: string): AsyncGenerator<Buffer> {
  return tarTree({ root, mounts: [], readonlyRootfs: false, allowed: [root] }, '/', '', false);
}

async function* tarTree(v: ContainerFs, start: string, startName: string, includeStart: boolean): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  async function* entry(cpath: string, name: string, top: boolean): AsyncGenerator<Buffer> {
    const host = hostPath(v, cpath);
    let st: BigIntStats;
    try {
      st = await fs.lstat(host, { bigint: true });
    } catch (err) {
      // Gone meanwhile: moby skips it too.
      if (!top) return;
      throw err;
    }
    const mode = Number(st.mode);
    const kind = mode & 0o170000;
    if (kind === 0o140000) return; // sockets are not archived
    const isDir = kind === 0o040000;
    if (!(top && !includeStart)) {
      const h: WriteHeader = {
        name: isDir ? `${name}/` : name,
        type: 'file',
        mode: mode & 0o7777,
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: 0,
        mtime: Number(st.mtimeMs / 1000n),
      };
      if (isDir) h.type = 'directory';
      else if (kind === 0o120000) {
        h.type = 'symlink';
        h.linkname = await fs.readlink(host);
      } else if (kind === 0o020000 || kind === 0o060000) {
        h.type = kind === 0o020000 ? 'char' : 'block';
        const rdev = st.rdev;
        h.devmajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
        h.devminor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
      } else if (kind === 0o010000) h.type = 'fifo';
      else if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          h.type = 'link';
          h.linkname = first;
        } else links.set(key, name);
      }
      if (h.type === 'file') {
        yield* fileEntry(v, host, h, Number(st.size));
      } else yield encodeHeader(h);
    }
    if (!isDir) return;
    let names: string[];
    try {
      names = await fs.readdir(host);
    } catch {
      return;
    }
    // Mount points the directory listing may not show (a stopped container's volumes are not mounted here).
    for (const m of v.mounts) if (posix.dirname(m.destination) === cpath && m.destination !== cpath) names.push(posix.basename(m.destination));
    for (const n of [...new Set(names)].sort(byteOrder)) {
      yield* entry(posix.join(cpath, n), top && !includeStart ? n : `${name}/${n}`, false);
    }
  }
  yield* entry(start, startName, true);
  yield tarTrailer();
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function* fileEntry(v: ContainerFs, host: string, h: WriteHeader, size: number): AsyncGenerator<Buffer> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return; // removed or replaced meanwhile
  }
  try {
    await checkFd(v, fh, h.name);
    h.size = size;
    yield encodeHeader(h);
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
    // The file shrank while being read: zeros keep the archive well-formed.
    if (left > 0) yield Buffer.alloc(left);
    yield padding(size);
  } finally {
    await fh.close();
  }
}

// ---- writing: extracting a tar into a directory --------------------------------------------

export interface ExtractOptions {
  noOverwriteDirNonDir: boolean;
  /** copyUIDGID: every entry gets this owner (the container's user) instead of the archive's. */
  chown?: { uid: number; gid: number };
}

/** moby's errors for PUT /containers/{id}/archive (500s in API 1.41). */
function denied(v: ContainerFs, cpath: string): string | undefined {
  const m = mountOf(v, cpath);
  if (m) return m.readOnly ? 'mounted volume is marked read-only' : undefined;
  return v.readonlyRootfs ? 'container rootfs is marked read-only' : undefined;
}

/** PUT /containers/{id}/archive: extracts `tar` into the directory at `path` (the last element followed if a symlink). */
export async function extractToDir(v: ContainerFs, path: string, tar: AsyncIterable<Buffer>, opts: ExtractOptions): Promise<void> {
  const dest = await resolve(v, posix.join('/', path), true);
  const st = await fs.lstat(hostPath(v, dest));
  if (!st.isDirectory()) throw new SystemError('extraction point is not a directory');
  const m = mountOf(v, dest);
  if (m && m.volume && m.readOnly) throw new SystemError('mounted volume is marked read-only');
  if (!(m && m.volume) && v.readonlyRootfs) throw new SystemError('container rootfs is marked read-only');

  const special = new SpecialFiles();
  const dirTimes: Array<[string, number]> = [];
  const parents = new Map<string, string>();
  for await (const e of readTar(tar).entries) {
    const h = e.header;
    const rel = cleanEntry(h.name);
    if (rel === '') {
      for await (const _ of e.body) void _;
      continue;
    }
    // The parent is followed (scoped to the container), the entry itself is not.
    const parentRel = posix.dirname(rel);
    let parent = parents.get(parentRel);
    if (parent === undefined) {
      parent = await resolve(v, posix.join(dest, parentRel), true);
      parents.set(parentRel, parent);
    }
    const cpath = posix.join(parent, posix.basename(rel));
    const why = denied(v, cpath);
    if (why) throw new SystemError(why);
    const host = hostPath(v, cpath);
    await ensureDir(v, parent);
    const existing = await fs.lstat(host).catch(() => undefined);
    if (existing) {
      if (opts.noOverwriteDirNonDir && existing.isDirectory() && h.type !== 'directory') {
        throw new SystemError(`cannot overwrite directory "${cpath}" with non-directory "${h.name}"`);
      }
      if (opts.noOverwriteDirNonDir && !existing.isDirectory() && h.type === 'directory') {
        throw new SystemError(`cannot overwrite non-directory "${cpath}" with directory "${h.name}"`);
      }
      if (!(existing.isDirectory() && h.type === 'directory')) {
        await fs.rm(host, { recursive: true, force: true });
        parents.clear();
      }
    }
    const uid = opts.chown?.uid ?? h.uid;
    const gid = opts.chown?.gid ?? h.gid;
    switch (h.type) {
      case 'directory':
        for await (const _ of e.body) void _;
        if (!existing?.isDirectory()) await fs.mkdir(host, { mode: h.mode & 0o7777 });
        dirTimes.push([host, h.mtime]);
        break;
      case 'file':
        await writeEntryFile(v, host, e.body, h);
        break;
      case 'symlink': {
        for await (const _ of e.body) void _;
        // moby's breakout check: the target, taken relative to the entry, must stay in the extraction directory.
        const target = posix.join(posix.dirname(posix.join(dest, rel)), h.linkname);
        if (!within(dest, target)) throw new SystemError(`invalid symlink "${posix.join(dest, rel)}" -> "${h.linkname}"`);
        await fs.symlink(h.linkname, host);
        parents.clear();
        break;
      }
      case 'link': {
        for await (const _ of e.body) void _;
        const targetRel = cleanEntry(h.linkname);
        const target = posix.join(dest, targetRel);
        if (targetRel === '' || !within(dest, target)) throw new SystemError(`invalid hardlink "${posix.join(dest, rel)}" -> "${h.linkname}"`);
        const targetPath = posix.join(await resolve(v, posix.dirname(target), true), posix.basename(target));
        await fs.link(hostPath(v, targetPath), host);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo':
        for await (const _ of e.body) void _;
        special.mknod(host, h.type === 'char' ? 'c' : h.type === 'block' ? 'b' : 'p', h.devmajor, h.devminor, h.mode, uid, gid);
        continue;
      default:
        throw new SystemError(`unhandled tar header type for "${h.name}"`);
    }
    if (h.type !== 'link') {
      await fs.lchown(host, uid, gid);
      if (h.type !== 'symlink') await fs.chmod(host, h.mode & 0o7777);
      if (h.type !== 'directory') await fs.lutimes(host, h.mtime, h.mtime);
    }
    for (const [k, val] of h.xattrs) special.setxattr(host, k, val);
  }
  await special.flush();
  for (const [host, mtime] of dirTimes.reverse()) await fs.utimes(host, mtime, mtime).catch(() => undefined);
}

/** An entry name as a clean relative path; one that climbs out is refused (moby's breakoutError). */
function cleanEntry(name: string): string {
  const rel = posix.relative('/d', posix.join('/d', name));
  if (rel === '..' || rel.startsWith('../')) throw new SystemError(`${JSON.stringify(name)} is outside of the extraction directory`);
  return rel;
}

function within(dir: string, p: string): boolean {
  return p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** Creates the missing directories down to the container path `dir` (moby: MkdirAll 0755). */
async function ensureDir(v: ContainerFs, dir: string): Promise<void> {
  const host = hostPath(v, dir);
  const st = await fs.lstat(host).catch(() => undefined);
  if (st?.isDirectory()) return;
  if (st) throw new SystemError(`mkdir ${dir}: not a directory`);
  await ensureDir(v, posix.dirname(dir));
  await fs.mkdir(host, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

async function writeEntryFile(v: ContainerFs, host: string, body: AsyncIterable<Buffer>, h: TarHeader): Promise<void> {
  const fh = await fs.open(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await checkFd(v, fh, h.name).catch(async (err) => {
      await fh.truncate(0).catch(() => undefined);
      throw err;
    });
    for await (const chunk of body) {
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}
