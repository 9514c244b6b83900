// librsync's delta wire format, the one balenaEngine ships inside delta
// images: a 4-byte magic, then commands until END. A LITERAL carries bytes of
// the target; a COPY names a range of the base stream. All integers are
// big-endian, in the smallest of 1/2/4/8 bytes that holds them.
import { InvalidParameter } from '../errors.js';
import { ByteSource } from '../archive/bytesource.js';

export const DELTA_MAGIC = 0x72730236;

const OP_END = 0x00;
/** 0x01..0x40: a literal whose length is the opcode itself (librsync emits these; balena does not). */
const OP_LITERAL_IMMEDIATE_MAX = 0x40;
const OP_LITERAL_N1 = 0x41;
const OP_COPY_N1_N1 = 0x45;
const OP_COPY_N8_N8 = 0x54;

/** Width index (0..3 for 1/2/4/8 bytes) of the smallest field that holds `n`. */
function widthIndex(n: number): number {
  if (n < 0x100) return 0;
  if (n < 0x10000) return 1;
  if (n < 0x100000000) return 2;
  return 3;
}

function putUint(buf: Buffer, at: number, n: number, w: number): number {
  const bytes = 1 << w;
  if (bytes === 8) {
    buf.writeBigUInt64BE(BigInt(n), at);
  } else {
    buf.writeUIntBE(n, at, bytes);
  }
  return at + bytes;
}

export function magicBytes(): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(DELTA_MAGIC, 0);
  return b;
}

/** The command that precedes `len` literal bytes (always the explicit-length form, like balena's encoder). */
export function literalCommand(len: number): Buffer {
  if (len <= 0) throw new RangeError('literal length must be positive');
  const w = widthIndex(len);
  const b = Buffer.alloc(1 + (1 << w));
  b[0] = OP_LITERAL_N1 + w;
  putUint(b, 1, len, w);
  return b;
}

export function copyCommand(offset: number, len: number): Buffer {
  if (len <= 0 || offset < 0) throw new RangeError('copy needs a positive length and a non-negative offset');
  const wo = widthIndex(offset);
  const wl = widthIndex(len);
  const b = Buffer.alloc(1 + (1 << wo) + (1 << wl));
  b[0] = OP_COPY_N1_N1 + wo * 4 + wl;
  putUint(b, putUint(b, 1, offset, wo), len, wl);
  return b;
}

export function endCommand(): Buffer {
  return Buffer.from([OP_END]);
}

/** Random access to the base stream the COPY offsets point into. */
export interface BaseSource {
  readonly size: number;
  /** Exactly `len` bytes at `offset` (which must lie within the base). */
  read(offset: number, len: number): Promise<Buffer>;
  /** The same into `buf` at 0, for callers that reuse one buffer. */
  readInto(buf: Buffer, offset: number, len: number): Promise<void>;
}

/** A malformed or truncated delta: the message names what was wrong, as librsync-go's do. */
export class DeltaError extends InvalidParameter {}

function readUint(b: Buffer): number {
  if (b.length === 8) {
    const v = b.readBigUInt64BE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DeltaError('delta integer out of range');
    return Number(v);
  }
  return b.readUIntBE(0, b.length);
}

const COPY_CHUNK = 64 * 1024;

/**
 * Streams the target: delta bytes in, target bytes out, COPY ranges read from
 * `base`. Memory stays constant whatever the sizes (at most one chunk in flight).
 */
export async function* patch(delta: AsyncIterable<Buffer>, base: BaseSource): AsyncGenerator<Buffer> {
  const cur = new ByteSource(delta[Symbol.asyncIterator](), () => new DeltaError('unexpected EOF'));
  const magic = (await cur.exact(4)).readUInt32BE(0);
  if (magic !== DELTA_MAGIC) {
    throw new DeltaError(`Got magic number ${magic.toString(16).padStart(8, '0')} rather than expected value ${DELTA_MAGIC.toString(16)}`);
  }
  for (;;) {
    const op = (await cur.exact(1))[0] as number;
    if (op === OP_END) break;
    if (op <= OP_LITERAL_IMMEDIATE_MAX) {
      yield* cur.chunks(op);
    } else if (op < OP_COPY_N1_N1) {
      const len = readUint(await cur.exact(1 << (op - OP_LITERAL_N1)));
      yield* cur.chunks(len);
    } else if (op <= OP_COPY_N8_N8) {
      const k = op - OP_COPY_N1_N1;
      const offset = readUint(await cur.exact(1 << (k >> 2)));
      const len = readUint(await cur.exact(1 << (k & 3)));
      if (offset + len > base.size) {
        throw new DeltaError(`delta copies bytes ${offset}..${offset + len} but the base has only ${base.size}`);
      }
      for (let done = 0; done < len; ) {
        const n = Math.min(COPY_CHUNK, len - done);
        yield await base.read(offset + done, n);
        done += n;
      }
    } else {
      throw new DeltaError(`invalid delta command 0x${op.toString(16)}`);
    }
  }
  if (!(await cur.atEnd())) throw new DeltaError('trailing data after the end of the delta');
}

/** An in-memory base, for tests and small inputs. */
export function bufferBase(b: Buffer): BaseSource {
  return {
    size: b.length,
    read: async (off, len) => b.subarray(off, off + len),
    readInto: async (buf, off, len) => void b.copy(buf, 0, off, off + len),
  };
}
