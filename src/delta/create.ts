// Creating a delta image (POST /images/delta), balenaEngine-compatible: one
// layer per target layer: the empty layer where base and target share the
// ChainID at that position, else tar{delta} with the delta of that target
// layer against the whole base stream. The config carries the base ID and the
// target's raw config as labels, so applying it yields the target's image ID.
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { extractPending } from '../store/apply.js';
import type { ImageStore, StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import { LABEL_BASE, LABEL_CONFIG } from './apply.js';
import { openBase, type BaseStream } from './base.js';
import { encodeDelta, indexBase } from './encoder.js';
import type { BaseIndex } from './index.js';
import { deltaLayerTar, emptyLayerTar } from './layer.js';

/** A progress line: balena's statuses, keyed by the base ref or a target layer's short ID. */
export interface DeltaEvent {
  id?: string;
  status: string;
}

export interface CreateDeltaContext {
  layers: LayerStore;
  images: ImageStore;
  /** A scratch directory for delta files while their size is unknown. */
  tmpDir: string;
}

export interface DeltaResult {
  image: StoredImage;
  /** Uncompressed bytes of the target layers that differ, and of their deltas. */
  normalSize: number;
  deltaSize: number;
  /** The base stream's size, and the memory its fingerprint held (hash index; tar-split segments). */
  baseBytes: number;
  indexBytes: number;
  segmentBytes: number;
}

const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

export async function createDelta(
  ctx: CreateDeltaContext,
  src: { image: StoredImage; name: string },
  dest: StoredImage,
  emit: (e: DeltaEvent) => void,
): Promise<DeltaResult> {
  const t0 = Date.now();
  emit({ id: src.name, status: 'Fingerprinting' });
  const base = await openBase(src.image.chainIds.map((c) => ctx.layers.splitOf(c)));
  try {
    const index = await indexBase(base);
    emit({ id: src.name, status: `Fingerprint complete, took ${((Date.now() - t0) / 1000).toFixed(2)}s` });
    const layerIds = dest.diffIds.map(short);
    for (const id of layerIds) emit({ id, status: 'Waiting' });
    await fs.mkdir(ctx.tmpDir, { recursive: true, mode: 0o700 });
    const diffIds: string[] = [];
    let parent: string | null = null;
    let normalSize = 0;
    let deltaSize = 0;
    for (let i = 0; i < dest.chainIds.length; i++) {
      const id = layerIds[i] as string;
      let tar: AsyncIterable<Buffer>;
      let file: string | undefined;
      const common = i < src.image.chainIds.length && src.image.chainIds[i] === dest.chainIds[i];
      if (common) {
        emit({ id, status: 'Skipping common layer' });
        tar = emptyLayerTar();
      } else {
        emit({ id, status: 'Computing delta' });
        file = join(ctx.tmpDir, `delta-${randomBytes(8).toString('hex')}`);
        const { size, targetBytes } = await writeDelta(file, base, index, ctx.layers.tar(dest.chainIds[i] as string));
        normalSize += targetBytes;
        deltaSize += size;
        tar = deltaLayerTar(size, createReadStream(file));
      }
      let diffId: string;
      try {
        // One read of the layer: its DiffID is hashed while it is extracted.
        const pending = await extractPending(ctx.layers, tar);
        diffId = pending.diffId;
        parent = (await pending.commit(parent)).chainId;
      } finally {
        if (file) await fs.rm(file, { force: true });
      }
      diffIds.push(diffId);
      if (!common) emit({ id, status: 'Delta complete' });
    }
    const config = Buffer.from(
      JSON.stringify({
        created: new Date().toISOString(),
        config: { Labels: { [LABEL_BASE]: src.image.id, [LABEL_CONFIG]: dest.config.toString('utf8') } },
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    );
    const image = await ctx.images.put(config);
    const ratio = deltaSize > 0 ? normalSize / deltaSize : 0;
    emit({ status: `Normal size: ${humanSize(normalSize)}, Delta size: ${humanSize(deltaSize)}, ${ratio.toFixed(2)}x improvement` });
    return { image, normalSize, deltaSize, baseBytes: base.size, indexBytes: index.bytes, segmentBytes: base.segmentBytes };
  } finally {
    await base.close();
  }
}

/** Encodes one target layer into `file` (removed again on failure); its size is needed for the tar header. */
async function writeDelta(file: string, base: BaseStream, index: BaseIndex, target: AsyncIterable<Buffer>): Promise<{ size: number; targetBytes: number }> {
  const fh = await fs.open(file, 'wx', 0o600);
  let size = 0;
  let targetBytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const c of target) {
      targetBytes += c.length;
      yield c;
    }
  }
  try {
    await encodeDelta(base, counted(), async (b) => {
      await fh.write(b);
      size += b.length;
    }, index);
    return { size, targetBytes };
  } catch (err) {
    await fs.rm(file, { force: true });
    throw err;
  } finally {
    await fh.close();
  }
}

/** Docker's units.HumanSize: decimal units, 4 significant digits. */
function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}
