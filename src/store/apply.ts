// One layer tar stream → one committed layer. The same path serves pulls,
// image loads and deltas: hash the tar (its DiffID) while extracting it, and
// commit only when the DiffID and the caller's own checks agree.
import { createHash } from 'node:crypto';
import { InvalidParameter } from '../errors.js';
import { readTar } from '../archive/reader.js';
import { extractLayer } from './extract.js';
import type { LayerRecord, LayerStore } from './layers.js';
import { SpecialFiles } from './special.js';

export interface ApplyOptions {
  /** The DiffID the image config promises for this layer. */
  diffId: string;
  parent: string | null;
  /** Last checks before the commit (the compressed blob's digest, the parent's commit); throw to abort. */
  beforeCommit?: () => void | Promise<void>;
}

export async function applyLayer(store: LayerStore, tar: AsyncIterable<Buffer>, opts: ApplyOptions): Promise<LayerRecord> {
  const tx = await store.begin();
  try {
    const hash = createHash('sha256');
    async function* hashed(): AsyncGenerator<Buffer> {
      for await (const c of tar) {
        hash.update(c);
        yield c;
      }
    }
    const { entries, trailer } = readTar(hashed());
    const stats = await extractLayer(entries, { diffDir: tx.diffDir, keepDir: tx.keepDir, pacer: tx.pacer }, tx.split, new SpecialFiles());
    await tx.split.segment(trailer());
    const actual = 'sha256:' + hash.digest('hex');
    if (actual !== opts.diffId) {
      throw new InvalidParameter(`layer content does not match its DiffID: expected ${opts.diffId}, got ${actual}`);
    }
    await opts.beforeCommit?.();
    return await tx.commit(opts.diffId, opts.parent, stats.contentBytes, stats.superseded);
  } catch (err) {
    await tx.abort();
    throw err;
  }
}
