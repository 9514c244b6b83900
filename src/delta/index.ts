// A sparse fingerprint index of the base stream. Only one window of W bytes
// every S bytes is hashed and kept, in an open-addressing table of 8-byte
// slots, 1.25 slots per sample: 3.9 % of the base size at S = 256, where
// librsync's full block signature (balenaEngine) costs 15-20 %. The encoder
// hashes every target offset, so any common run of S + W - 1 bytes still
// contains a sampled window; byte-exact extension then finds its true ends.

/** Bytes per hashed window. */
export const WINDOW = 32;
const PRIME = 0x01000193;
/** PRIME^WINDOW mod 2^32, to take the outgoing byte out of a rolling hash. */
export const PRIME_POW = (() => {
  let p = 1;
  for (let i = 0; i < WINDOW; i++) p = Math.imul(p, PRIME);
  return p;
})();
const PROBES = 8;

export function windowHash(b: Uint8Array, at: number): number {
  let h = 0;
  for (let i = 0; i < WINDOW; i++) h = (Math.imul(h, PRIME) + (b[at + i] as number)) | 0;
  return h;
}

/** The hash of the window one byte further on. */
export function roll(h: number, out: number, inb: number): number {
  return (Math.imul(h, PRIME) - Math.imul(out, PRIME_POW) + inb) | 0;
}

/** A slot in [0, size): the mixed hash scaled to the table (no power-of-two rounding of the size). */
function slotOf(h: number, size: number): number {
  return Math.floor(((Math.imul(h, 0x9e3779b1) >>> 0) / 4294967296) * size);
}

export class BaseIndex {
  private readonly size: number;
  private readonly hashes: Int32Array;
  /** Sample number + 1 (0 = empty slot): offsets are sample * stride. */
  private readonly samples: Uint32Array;

  constructor(
    baseSize: number,
    readonly stride: number,
  ) {
    this.size = Math.max(1024, Math.ceil((1.25 * baseSize) / stride));
    this.hashes = new Int32Array(this.size);
    this.samples = new Uint32Array(this.size);
  }

  /** Memory the index holds. */
  get bytes(): number {
    return this.hashes.byteLength + this.samples.byteLength;
  }

  add(h: number, sample: number): void {
    let s = slotOf(h, this.size);
    for (let i = 0; i < PROBES; i++, s = s + 1 === this.size ? 0 : s + 1) {
      if (this.samples[s] === 0) {
        this.hashes[s] = h;
        this.samples[s] = sample + 1;
        return;
      }
      // The first occurrence of a window wins; repeats add nothing.
      if (this.hashes[s] === h) return;
    }
  }

  /** Base offsets whose sampled window has hash `h` (at most one, as repeats are not kept). */
  find(h: number): number {
    let s = slotOf(h, this.size);
    for (let i = 0; i < PROBES; i++, s = s + 1 === this.size ? 0 : s + 1) {
      const v = this.samples[s] as number;
      if (v === 0) return -1;
      if (this.hashes[s] === h) return (v - 1) * this.stride;
    }
    return -1;
  }
}

/** Feeds the base stream through, sampling a window every `stride` bytes. Chunks are not kept. */
export class IndexBuilder {
  /** The last WINDOW bytes before `at`: a sampled window may start there. */
  private carry: Buffer = Buffer.alloc(0);
  /** Absolute offset of the next chunk. */
  private at = 0;
  private sample = 0;

  constructor(readonly index: BaseIndex) {}

  push(chunk: Buffer): void {
    const stride = this.index.stride;
    const start = this.at;
    const end = start + chunk.length;
    for (let a = this.sample * stride; a + WINDOW <= end; a += stride) {
      let h: number;
      if (a >= start) {
        h = windowHash(chunk, a - start);
      } else {
        // The window began in earlier chunks (maybe several short ones): carry has their last bytes.
        const joined = Buffer.concat([this.carry, chunk.subarray(0, WINDOW)]);
        h = windowHash(joined, a - (start - this.carry.length));
      }
      this.index.add(h, this.sample);
      this.sample++;
    }
    const tail = chunk.length >= WINDOW ? chunk.subarray(chunk.length - WINDOW) : Buffer.concat([this.carry, chunk]).subarray(-WINDOW);
    this.carry = Buffer.from(tail);
    this.at = end;
  }
}

/** The stride for a base: small bases get a finer index, big ones stay near 6 % of their size. */
export function strideFor(baseSize: number): number {
  if (baseSize < 4 << 20) return 64;
  if (baseSize < 16 << 20) return 128;
  return 256;
}
