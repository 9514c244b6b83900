// Writing tar streams: ustar headers, with a PAX record only for what ustar
// cannot hold. Two callers: docker save (tarHeader: root-owned entries with
// fixed modes) and docker cp/export (encodeHeader: a file's own owner, mode,
// device numbers and xattrs, with the file type bits kept in the mode field as
// Docker's archive package writes them, Go's fillGo18FileTypeBits). Bodies are
// streamed by the callers; their sizes must be known.
import { BLOCK, type EntryType } from './header.js';

export interface WriteEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  size?: number;
  mode?: number;
  /** Unix seconds. */
  mtime?: number;
  linkname?: string;
}

export interface WriteHeader {
  name: string;
  type: Exclude<EntryType, 'other'>;
  /** Permission bits plus setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const FLAG: Record<WriteHeader['type'], string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6' };
const TYPE_BITS: Record<WriteHeader['type'], number> = { file: 0o100000, link: 0o100000, symlink: 0o120000, char: 0o20000, block: 0o60000, directory: 0o40000, fifo: 0o10000 };

interface Fields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor?: number;
  devminor?: number;
}

/** Writes v in octal, NUL-terminated; false when it does not fit. */
function octal(b: Buffer, off: number, len: number, v: number): boolean {
  const s = v.toString(8);
  if (s.length > len - 1) return false;
  b.write(s.padStart(len - 1, '0'), off, 'latin1');
  return true;
}

/** One ustar block; `overflow` names the numeric fields too big for it (they go to PAX). */
function ustar(f: Fields): { buf: Buffer; overflow: Array<'uid' | 'gid' | 'size'> } {
  const b = Buffer.alloc(BLOCK);
  const overflow: Array<'uid' | 'gid' | 'size'> = [];
  b.write(f.name, 0, 100, 'utf8');
  octal(b, 100, 8, f.mode);
  if (!octal(b, 108, 8, f.uid)) overflow.push('uid');
  if (!octal(b, 116, 8, f.gid)) overflow.push('gid');
  if (!octal(b, 124, 12, f.size)) overflow.push('size');
  octal(b, 136, 12, Math.max(0, Math.floor(f.mtime)));
  b.write('        ', 148, 8, 'latin1');
  b.write(f.typeflag, 156, 1, 'latin1');
  if (f.linkname) b.write(f.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  if (f.devmajor !== undefined) octal(b, 329, 8, f.devmajor);
  if (f.devminor !== undefined) octal(b, 337, 8, f.devminor);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i] as number;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return { buf: b, overflow };
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  // The length prefix counts itself.
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function withPax(records: Buffer[], paxName: string, paxMtime: number, main: Buffer): Buffer {
  const data = Buffer.concat(records);
  const head = ustar({ name: paxName, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: paxMtime, typeflag: 'x', linkname: '' }).buf;
  return Buffer.concat([head, data, padding(data.length), main]);
}

/** The header blocks of one docker save entry (root-owned). */
export function tarHeader(e: WriteEntry): Buffer {
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  const typeflag = e.type === 'file' ? '0' : e.type === 'directory' ? '5' : '2';
  const f: Fields = { name: e.name, mode: e.mode ?? (e.type === 'file' ? 0o644 : 0o755), uid: 0, gid: 0, size, mtime: e.mtime ?? 0, typeflag, linkname: e.linkname ?? '' };
  const long = Buffer.byteLength(e.name) > 100 || Buffer.byteLength(e.linkname ?? '') > 100;
  const main = ustar(long ? { ...f, name: e.name.slice(0, 100) } : f);
  const records: Buffer[] = [];
  if (long) {
    records.push(paxRecord('path', Buffer.from(e.name)));
    if (e.linkname) records.push(paxRecord('linkpath', Buffer.from(e.linkname)));
  }
  // A layer tar of 8 GiB or more does not fit the 11 octal digits: its size goes to PAX, as encodeHeader does.
  if (main.overflow.includes('size')) records.push(paxRecord('size', Buffer.from(String(size))));
  if (records.length === 0) return main.buf;
  return withPax(records, 'PaxHeaders/' + e.name.slice(-80), 0, main.buf);
}

/** The header block(s) of one file of a container (docker cp, export). */
export function encodeHeader(h: WriteHeader): Buffer {
  const size = h.type === 'file' ? h.size : 0;
  const linkname = h.linkname ?? '';
  const dev = h.type === 'char' || h.type === 'block' ? { devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 } : {};
  const main = ustar({ name: truncate(h.name), mode: (h.mode & 0o7777) | TYPE_BITS[h.type], uid: h.uid, gid: h.gid, size, mtime: h.mtime, typeflag: FLAG[h.type], linkname: truncate(linkname), ...dev });
  const records: Buffer[] = [];
  if (Buffer.byteLength(h.name) > 100) records.push(paxRecord('path', Buffer.from(h.name)));
  if (Buffer.byteLength(linkname) > 100) records.push(paxRecord('linkpath', Buffer.from(linkname)));
  for (const f of main.overflow) records.push(paxRecord(f, Buffer.from(String(f === 'size' ? size : h[f]))));
  for (const [k, v] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  if (records.length === 0) return main.buf;
  return withPax(records, truncate(`PaxHeaders.0/${h.name.replace(/\/$/, '').split('/').pop() ?? ''}`), h.mtime, main.buf);
}

/** At most 100 bytes without cutting a UTF-8 sequence (the full name is in the PAX record). */
function truncate(s: string): string {
  if (Buffer.byteLength(s) <= 100) return s;
  const t = Buffer.from(s).subarray(0, 100).toString('utf8');
  return t.endsWith('\uFFFD') ? t.slice(0, -1) : t;
}

/** Zero bytes that complete a body of `size` bytes to a whole block. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end-of-archive marker: two zero blocks. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

/** One whole small entry (a JSON file). */
export function tarFile(name: string, data: Buffer, mtime = 0): Buffer {
  return Buffer.concat([tarHeader({ name, type: 'file', size: data.length, mtime }), data, padding(data.length)]);
}
