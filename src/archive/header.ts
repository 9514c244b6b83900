// Decoding tar headers: ustar, GNU (long names, base-256 numbers) and PAX
// extended records, as the layer tars in registries use them.
import { InvalidParameter } from '../errors.js';

export const BLOCK = 512;

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo' | 'other';

export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: EntryType;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX `SCHILY.xattr.*` records. */
  xattrs: Map<string, Buffer>;
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

/** Header-only records that modify the next entry. */
export type MetaKind = 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink';

export function metaKind(block: Buffer): MetaKind | undefined {
  switch (String.fromCharCode(block[156] as number)) {
    case 'x':
      return 'pax';
    case 'g':
      return 'pax-global';
    case 'L':
      return 'gnu-longname';
    case 'K':
      return 'gnu-longlink';
    default:
      return undefined;
  }
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function cstring(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

/** ASCII whitespace, as String.prototype.trim strips it from a field. */
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

// Headers are decoded for every entry of every layer: these work on the bytes
// directly rather than through strings and regular expressions.
function numeric(b: Buffer, off: number, len: number, field: string): number {
  const first = b[off] as number;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement in the remaining bytes.
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + (b[off + i] as number);
    if (first & 0x40) throw new InvalidParameter(`archive/tar: negative ${field} in header`);
    if (!Number.isSafeInteger(v)) throw new InvalidParameter(`archive/tar: ${field} out of range`);
    return v;
  }
  // Up to the first NUL, without surrounding spaces; empty is 0.
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  let start = off;
  while (start < end && isSpace(b[start] as number)) start++;
  while (end > start && isSpace(b[end - 1] as number)) end--;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x37) {
      throw new InvalidParameter(`archive/tar: invalid ${field} field in header: ${JSON.stringify(b.toString('utf8', start, end))}`);
    }
    v = v * 8 + (c - 0x30);
  }
  return v;
}

export function checksumOk(b: Buffer): boolean {
  const stored = numeric(b, 148, 8, 'checksum');
  // The checksum field itself counts as eight spaces.
  let unsigned = 8 * 32;
  let high = 0;
  for (let i = 0; i < 148; i++) {
    const v = b[i] as number;
    unsigned += v;
    if (v > 127) high++;
  }
  for (let i = 156; i < BLOCK; i++) {
    const v = b[i] as number;
    unsigned += v;
    if (v > 127) high++;
  }
  // Some old tars summed signed bytes: each byte above 127 counts 256 less.
  return stored === unsigned || stored === unsigned - 256 * high;
}

export function decodeHeader(b: Buffer): TarHeader {
  if (!checksumOk(b)) throw new InvalidParameter('archive/tar: invalid tar header (checksum mismatch)');
  const magic = b.toString('latin1', 257, 263);
  let name = cstring(b, 0, 100);
  if (magic === 'ustar\0' || magic === 'ustar ') {
    const prefix = magic === 'ustar\0' ? cstring(b, 345, 155) : '';
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(b[156] as number);
  return {
    name,
    mode: numeric(b, 100, 8, 'mode'),
    uid: numeric(b, 108, 8, 'uid'),
    gid: numeric(b, 116, 8, 'gid'),
    size: numeric(b, 124, 12, 'size'),
    mtime: numeric(b, 136, 12, 'mtime'),
    type: TYPES[typeflag] ?? 'other',
    linkname: cstring(b, 157, 100),
    uname: cstring(b, 265, 32),
    gname: cstring(b, 297, 32),
    devmajor: numeric(b, 329, 8, 'devmajor'),
    devminor: numeric(b, 337, 8, 'devminor'),
    xattrs: new Map(),
  };
}

/** PAX records: "<len> <key>=<value>\n" repeated. Values are raw bytes (xattrs may be binary). */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp === -1) break;
    const len = Number(data.toString('latin1', off, sp));
    if (!Number.isInteger(len) || len <= 0 || off + len > data.length) {
      throw new InvalidParameter('archive/tar: invalid PAX record');
    }
    const rec = data.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new InvalidParameter('archive/tar: invalid PAX record');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

export function applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
  for (const [k, v] of pax) {
    const s = v.toString('utf8');
    switch (k) {
      case 'path':
        h.name = s;
        break;
      case 'linkpath':
        h.linkname = s;
        break;
      case 'size':
      case 'uid':
      case 'gid': {
        if (!/^\d+$/.test(s)) throw new InvalidParameter(`archive/tar: invalid PAX ${k}`);
        const n = Number(s);
        if (!Number.isSafeInteger(n)) throw new InvalidParameter(`archive/tar: PAX ${k} out of range`);
        h[k] = n;
        break;
      }
      case 'mtime': {
        const n = Number(s);
        if (!Number.isFinite(n)) throw new InvalidParameter('archive/tar: invalid PAX mtime');
        h.mtime = Math.floor(n);
        break;
      }
      case 'uname':
        h.uname = s;
        break;
      case 'gname':
        h.gname = s;
        break;
      default:
        if (k.startsWith('SCHILY.xattr.')) h.xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    }
  }
}
