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

/**
 * A layer extracted but not committed: its DiffID is known, its place in a
 * chain not yet (docker load reads layers before the manifest that orders
 * them). Until `commit`, start-up recovery removes it like any unfinished layer.
 */
export interface PendingLayer {
  diffId: string;
  /** Where its files were extracted (a delta image's `delta` file is read from here). */
  diffDir: string;
  commit(parent: string | null): Promise<LayerRecord>;
  abort(): Promise<void>;
}

export async function extractPending(store: LayerStore, tar: AsyncIterable<Buffer>): Promise<PendingLayer> {
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
    const diffId = 'sha256:' + hash.digest('hex');
    return {
      diffId,
      diffDir: tx.diffDir,
      commit: (parent) => tx.commit(diffId, parent, stats.contentBytes, stats.superseded),
      abort: () => tx.abort(),
    };
  } catch (err) {
    await tx.abort();
    throw err;
  }
}

export async function applyLayer(store: LayerStore, tar: AsyncIterable<Buffer>, opts: ApplyOptions): Promise<LayerRecord> {
  const pending = await extractPending(store, tar);
  try {
    if (pending.diffId !== opts.diffId) {
      throw new InvalidParameter(`layer content does not match its DiffID: expected ${opts.diffId}, got ${pending.diffId}`);
    }
    await opts.beforeCommit?.();
  } catch (err) {
    await pending.abort();
    throw err;
  }
  return pending.commit(opts.parent);
}
