// Writing tar streams (docker save): ustar headers, with a PAX record only
// when a name does not fit. Bodies are streamed; their sizes must be known.
import { BLOCK } from './header.js';

export interface WriteEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  size?: number;
  mode?: number;
  /** Unix seconds. */
  mtime?: number;
  linkname?: string;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

function ustar(name: string, e: WriteEntry, typeflag: string, size: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, e.mode ?? (e.type === 'file' ? 0o644 : 0o755));
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, Math.max(0, Math.floor(e.mtime ?? 0)));
  b.write('        ', 148, 8, 'latin1');
  b.write(typeflag, 156, 1, 'latin1');
  if (e.linkname) b.write(e.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i] as number;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** The header blocks of one entry. */
export function tarHeader(e: WriteEntry): Buffer {
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  const typeflag = e.type === 'file' ? '0' : e.type === 'directory' ? '5' : '2';
  const long = Buffer.byteLength(e.name) > 100 || Buffer.byteLength(e.linkname ?? '') > 100;
  if (!long) return ustar(e.name, e, typeflag, size);
  let pax = paxRecord('path', e.name);
  if (e.linkname) pax += paxRecord('linkpath', e.linkname);
  const data = Buffer.from(pax);
  const head = ustar('PaxHeaders/' + e.name.slice(-80), { name: '', type: 'file', mode: 0o644 }, 'x', data.length);
  return Buffer.concat([head, data, padding(data.length), ustar(e.name.slice(0, 100), e, typeflag, size)]);
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
