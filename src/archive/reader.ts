// A streaming tar reader that keeps every byte that is not file content
// (headers, PAX/GNU records, padding, the end-of-archive blocks and any
// trailing bytes) so the exact tar can be rebuilt from the extracted files
// (the tar-split idea). Backpressure is natural: the next entry is not read
// until the previous entry's body has been consumed.
import { InvalidParameter } from '../errors.js';
import { applyPax, BLOCK, decodeHeader, isZeroBlock, metaKind, parsePax, type TarHeader } from './header.js';
import { ByteSource } from './bytesource.js';

export interface TarEntry {
  header: TarHeader;
  /** Raw bytes before the content: meta records and the entry's own header block. */
  raw: Buffer;
  /** The content (`header.size` bytes); must be drained before asking for the next entry. */
  body: AsyncIterable<Buffer>;
}

export interface TarTail {
  /** Padding after the last body is part of that entry's `padding`; this is everything after. */
  raw: Buffer;
}

export interface TarReaderResult {
  entries: AsyncGenerator<TarEntry>;
  /** Available once `entries` is exhausted: padding of the last entry plus the trailer. */
  trailer(): Buffer;
}

const MAX_META = 1024 * 1024;

/**
 * Entries of a tar stream. Each entry's `raw` holds the padding of the
 * previous entry's body followed by its own header records, so that
 * concatenating raw + body of every entry + trailer gives back the input.
 */
export function readTar(source: AsyncIterable<Buffer>): TarReaderResult {
  const src = new ByteSource(source[Symbol.asyncIterator](), () => new InvalidParameter('archive/tar: unexpected EOF in file content'));
  let trailer: Buffer | undefined;

  async function* entries(): AsyncGenerator<TarEntry> {
    let pending: Buffer[] = [];
    let padding = 0;
    for (;;) {
      if (padding > 0) {
        const pad = await src.read(padding);
        if (pad.length < padding) throw new InvalidParameter('archive/tar: unexpected EOF in padding');
        pending.push(pad);
      }
      const metas = new Map<string, Buffer>();
      let longName: string | undefined;
      let longLink: string | undefined;
      let header: TarHeader | undefined;
      while (!header) {
        const block = await src.read(BLOCK);
        if (block.length === 0 && pending.length === 0 && metas.size === 0) {
          // An empty stream: Docker accepts it as an empty layer.
          trailer = Buffer.alloc(0);
          return;
        }
        if (block.length < BLOCK) throw new InvalidParameter('archive/tar: unexpected EOF in header');
        if (isZeroBlock(block)) {
          trailer = Buffer.concat([...pending, block, await src.rest()]);
          return;
        }
        pending.push(block);
        const kind = metaKind(block);
        if (kind) {
          const h = decodeHeader(block);
          if (h.size > MAX_META) throw new InvalidParameter('archive/tar: header record too large');
          const padded = Math.ceil(h.size / BLOCK) * BLOCK;
          const data = await src.read(padded);
          if (data.length < padded) throw new InvalidParameter('archive/tar: unexpected EOF in header record');
          pending.push(data);
          const content = data.subarray(0, h.size);
          if (kind === 'pax') for (const [k, v] of parsePax(content)) metas.set(k, v);
          else if (kind === 'gnu-longname') longName = cstr(content);
          else if (kind === 'gnu-longlink') longLink = cstr(content);
          // Global PAX headers apply to nothing skiff stores; kept in raw only.
          continue;
        }
        header = decodeHeader(block);
      }
      if (longName !== undefined) header.name = longName;
      if (longLink !== undefined) header.linkname = longLink;
      applyPax(header, metas);
      if (header.type === 'directory' || header.type === 'symlink' || header.type === 'link' || header.type === 'char' || header.type === 'block' || header.type === 'fifo') {
        // These carry no content even if a broken writer set a size.
        if (header.size !== 0 && header.type !== 'directory') header.size = 0;
      }
      const raw = Buffer.concat(pending);
      pending = [];
      const size = header.size;
      let consumed = false;
      const body = (async function* () {
        for await (const c of src.chunks(size)) yield c;
        consumed = true;
      })();
      yield { header, raw, body };
      if (!consumed) for await (const _ of body) void _;
      padding = (BLOCK - (size % BLOCK)) % BLOCK;
    }
  }

  return {
    entries: entries(),
    trailer: () => {
      if (trailer === undefined) throw new Error('tar trailer read before the last entry');
      return trailer;
    },
  };
}

function cstr(b: Buffer): string {
  const i = b.indexOf(0);
  return b.toString('utf8', 0, i === -1 ? b.length : i);
}
