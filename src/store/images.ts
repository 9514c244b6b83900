// Image configs by ID. The ID is the sha256 of the config's exact bytes, so
// the bytes are kept as they came. An image is written only after all its
// layers are committed, and recovery drops any image whose layers are gone.
//
//   images/<id hex>/config.json   the raw config
//   images/<id hex>/meta.json     when it was pulled and from which manifest
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { InvalidParameter, NotFound } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isDurableTemp, writeFileDurable, fsyncDir } from './durable.js';
import { chainIdOf, type LayerStore } from './layers.js';

export interface ImageMeta {
  /** When the image arrived (unix ms). */
  created: number;
  /** The tag or untag history is in the reference store; this is what the last pull saw. */
  lastTagTime?: number;
}

export interface StoredImage {
  id: string;
  config: Buffer;
  diffIds: string[];
  chainIds: string[];
  meta: ImageMeta;
}

export function imageIdOf(config: Buffer): string {
  return 'sha256:' + createHash('sha256').update(config).digest('hex');
}

/** The DiffIDs a config lists, checked, since layer identities come from them. */
export function diffIdsOf(config: Buffer): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config.toString('utf8'));
  } catch (err) {
    throw new InvalidParameter(`invalid image config: ${(err as Error).message}`);
  }
  const ids = (parsed as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d))) {
    throw new InvalidParameter('invalid image config: rootfs.diff_ids must list sha256 digests');
  }
  return ids as string[];
}

export function chainIdsOf(diffIds: string[]): string[] {
  const out: string[] = [];
  let parent: string | null = null;
  for (const d of diffIds) {
    parent = chainIdOf(parent, d);
    out.push(parent);
  }
  return out;
}

export class ImageStore {
  private readonly images = new Map<string, StoredImage>();
  private readonly dir: string;
  /** Layers an operation is reading (a delta being created), by chain ID: kept although no image uses them. */
  private readonly leases = new Map<string, number>();

  private constructor(root: string, private readonly layers: LayerStore) {
    this.dir = join(root, 'images');
  }

  /** `readOnly`: another data root's images (`--delta-data-root`); nothing there is changed. */
  static async open(root: string, layers: LayerStore, logger: Logger, opts: { readOnly?: boolean } = {}): Promise<ImageStore> {
    const s = new ImageStore(root, layers);
    if (!opts.readOnly) await fs.mkdir(s.dir, { recursive: true, mode: 0o700 });
    for (const name of await fs.readdir(s.dir).catch((err) => (opts.readOnly ? ([] as string[]) : Promise.reject(err)))) {
      const d = join(s.dir, name);
      try {
        if (!/^[0-9a-f]{64}$/.test(name)) throw new Error('not an image directory');
        if (!opts.readOnly) for (const f of await fs.readdir(d)) if (isDurableTemp(f)) await fs.rm(join(d, f), { force: true });
        const config = await fs.readFile(join(d, 'config.json'));
        if (imageIdOf(config) !== `sha256:${name}`) throw new Error('config does not match its ID');
        const meta = JSON.parse(await fs.readFile(join(d, 'meta.json'), 'utf8')) as ImageMeta;
        const diffIds = diffIdsOf(config);
        const chainIds = chainIdsOf(diffIds);
        const missing = chainIds.find((c) => !layers.get(c));
        if (missing) throw new Error(`layer ${missing} is missing`);
        s.images.set(`sha256:${name}`, { id: `sha256:${name}`, config, diffIds, chainIds, meta });
      } catch (err) {
        if (opts.readOnly) continue;
        logger.warn('removing an incomplete image', { image: name, reason: (err as Error).message });
        await fs.rm(d, { recursive: true, force: true });
      }
    }
    return s;
  }

  get(id: string): StoredImage | undefined {
    return this.images.get(id);
  }

  list(): StoredImage[] {
    return [...this.images.values()];
  }

  /** Stores a config whose layers are all committed; returns the existing image when already there. */
  async put(config: Buffer): Promise<StoredImage> {
    const id = imageIdOf(config);
    const have = this.images.get(id);
    if (have) return have;
    const diffIds = diffIdsOf(config);
    const chainIds = chainIdsOf(diffIds);
    const missing = chainIds.find((c) => !this.layers.get(c));
    if (missing) throw new NotFound(`layer ${missing} of image ${id} is not in the store`);
    const d = join(this.dir, id.slice(7));
    await fs.mkdir(d, { recursive: true, mode: 0o700 });
    const meta: ImageMeta = { created: Date.now() };
    await writeFileDurable(join(d, 'config.json'), config, 0o600);
    await writeFileDurable(join(d, 'meta.json'), JSON.stringify(meta), 0o600);
    await fsyncDir(this.dir);
    const img: StoredImage = { id, config, diffIds, chainIds, meta };
    this.images.set(id, img);
    return img;
  }

  async delete(id: string): Promise<void> {
    if (!this.images.delete(id)) return;
    await fs.rm(join(this.dir, id.slice(7)), { recursive: true, force: true });
    await fsyncDir(this.dir);
  }

  /**
   * Keeps the layers from garbage collection until the returned function is
   * called (once; later calls do nothing). In memory only: after a crash the
   * next removal collects what a lease kept.
   */
  lease(chainIds: readonly string[]): () => void {
    for (const c of chainIds) this.leases.set(c, (this.leases.get(c) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      for (const c of chainIds) {
        const n = (this.leases.get(c) ?? 1) - 1;
        if (n > 0) this.leases.set(c, n);
        else this.leases.delete(c);
      }
    };
  }

  /** Layers no image uses any more (and no lease keeps), top first so children go before parents. */
  unusedLayers(): string[] {
    const used = new Set<string>(this.leases.keys());
    for (const img of this.images.values()) for (const c of img.chainIds) used.add(c);
    const unused = this.layers.list().filter((l) => !used.has(l.chainId));
    const depth = (c: string | null): number => (c ? 1 + depth(this.layers.get(c)?.parent ?? null) : 0);
    return unused.sort((a, b) => depth(b.chainId) - depth(a.chainId)).map((l) => l.chainId);
  }
}
