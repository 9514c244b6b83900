// Turning a delta image back into its target: the delta's config names the
// base image and carries the target's exact config, so the result has the
// target's image ID. Each delta layer is patched against the base stream and
// the patched tar goes through the normal layer extraction, verified by the
// target's DiffID. Used by pull and by load.
import { InvalidParameter, NotFound, SkiffError } from '../errors.js';
import { applyLayer } from '../store/apply.js';
import { chainIdsOf, diffIdsOf, imageIdOf, type ImageStore, type StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import { openBase, type BaseStream } from './base.js';
import { patch } from './format.js';
import { deltaOfLayer } from './layer.js';

export const LABEL_BASE = 'io.resin.delta.base';
export const LABEL_CONFIG = 'io.resin.delta.config';

export interface DeltaInfo {
  /** The base image's ID. */
  base: string;
  /** The target's raw config, byte for byte. */
  targetConfig: Buffer;
  targetId: string;
  diffIds: string[];
  chainIds: string[];
}

/** The delta labels of an image config, or undefined for an ordinary image. */
export function deltaInfoOf(config: Buffer): DeltaInfo | undefined {
  let labels: Record<string, unknown> | undefined;
  try {
    labels = (JSON.parse(config.toString('utf8')) as { config?: { Labels?: Record<string, unknown> } | null })?.config?.Labels ?? undefined;
  } catch {
    return undefined;
  }
  const base = labels?.[LABEL_BASE];
  const target = labels?.[LABEL_CONFIG];
  if (typeof base !== 'string' || typeof target !== 'string') return undefined;
  const id = /^(sha256:)?([0-9a-f]{64})$/.exec(base);
  if (!id) throw new InvalidParameter(`invalid delta base image ID ${JSON.stringify(base)}`);
  const targetConfig = Buffer.from(target, 'utf8');
  const diffIds = diffIdsOf(targetConfig);
  return { base: `sha256:${id[2]}`, targetConfig, targetId: imageIdOf(targetConfig), diffIds, chainIds: chainIdsOf(diffIds) };
}

/** A store a delta base may live in: the daemon's own, then `--delta-data-root`'s (read-only). */
export interface BaseStore {
  layers: LayerStore;
  images: ImageStore;
}

/** Opens the base image's stream from the first store that has it. */
export async function openDeltaBase(stores: BaseStore[], baseId: string): Promise<BaseStream> {
  for (const s of stores) {
    const img = s.images.get(baseId);
    if (!img) continue;
    try {
      return await openBase(img.chainIds.map((c) => s.layers.splitOf(c)));
    } catch (err) {
      throw new NotFound(`loading delta base image "${baseId}": ${(err as Error).message}`, { cause: err });
    }
  }
  throw new NotFound(`loading delta base image "${baseId}": image not found in the image store${stores.length > 1 ? ' or the delta store' : ''}`);
}

/**
 * Target layer i's tar, from the delta image's layer i (its uncompressed tar)
 * and the base. An empty delta layer stands for a layer the target shares
 * with the base at the same position: it comes from the base itself (when
 * the base sits in the delta store, the target's copy is not local yet).
 */
export async function* patchLayer(deltaLayer: AsyncIterable<Buffer>, base: BaseStream, i: number): AsyncGenerator<Buffer> {
  try {
    const delta = await deltaOfLayer(deltaLayer);
    if (delta) {
      yield* patch(delta, base);
      return;
    }
    const range = base.layers[i];
    if (!range) throw new InvalidParameter('unexpected EOF, invalid delta tar archive');
    yield* base.stream(1 << 20, range[0], range[1]);
  } catch (err) {
    if (err instanceof SkiffError && err.kind !== 'invalid-parameter') throw err;
    throw new InvalidParameter(`applying delta: ${(err as Error).message}`, { cause: err });
  }
}

export interface ApplyDeltaContext {
  layers: LayerStore;
  images: ImageStore;
  /** Where to look for the base: the image's own store first. */
  bases: BaseStore[];
}

/**
 * Applies a whole delta image (docker load). `deltaLayer(i)` opens the
 * uncompressed tar of the delta image's layer i; it is asked only for target
 * layers that are not in the store yet. Returns the target image (stored).
 */
export async function applyDeltaImage(
  ctx: ApplyDeltaContext,
  deltaConfig: Buffer,
  deltaLayer: (i: number) => AsyncIterable<Buffer>,
  onLayer?: (i: number, status: 'Already exists' | 'Pull complete') => void,
): Promise<StoredImage> {
  const info = deltaInfoOf(deltaConfig);
  if (!info) throw new InvalidParameter('not a delta image: its config has no io.resin.delta.base / io.resin.delta.config labels');
  const have = ctx.images.get(info.targetId);
  if (have) return have;
  if (diffIdsOf(deltaConfig).length !== info.diffIds.length) {
    throw new InvalidParameter(`delta image has ${diffIdsOf(deltaConfig).length} layers but its target has ${info.diffIds.length}`);
  }
  let base: BaseStream | undefined;
  // Until the image is stored its layers, and the base's, are only leased: a removal meanwhile leaves them.
  const release = ctx.images.lease([...info.chainIds, ...(ctx.images.get(info.base)?.chainIds ?? [])]);
  try {
    for (let i = 0; i < info.chainIds.length; i++) {
      if (ctx.layers.get(info.chainIds[i] as string)) {
        onLayer?.(i, 'Already exists');
        continue;
      }
      base ??= await openDeltaBase(ctx.bases, info.base);
      await applyLayer(ctx.layers, patchLayer(deltaLayer(i), base, i), {
        diffId: info.diffIds[i] as string,
        parent: i === 0 ? null : (info.chainIds[i - 1] as string),
      });
      onLayer?.(i, 'Pull complete');
    }
    return await ctx.images.put(info.targetConfig);
  } finally {
    release();
    await base?.close();
  }
}
