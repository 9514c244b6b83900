// The delta operations the API offers: create a delta image between two
// local images (POST /images/delta). Applying deltas happens in pull and load
// (see apply.ts). Delta files being built live in <data-root>/delta-tmp,
// which start-up empties: nothing there outlives the request that made it.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { ImageStore, StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import { createDelta, type DeltaEvent } from './create.js';

export interface DeltaServiceOptions {
  layers: LayerStore;
  images: ImageStore;
  dataRoot: string;
  /** Resolves a name or ID the way the image service does (NotFound otherwise). */
  lookup(name: string): StoredImage;
  /** Keeps the images' layers while the delta is made (see ImageService.hold). */
  hold(images: readonly StoredImage[]): () => Promise<void>;
  /** Tags an image (`t`), as POST /images/{name}/tag does. */
  tag(id: string, ref: string): Promise<void>;
  logger?: Logger;
}

export interface PreparedDelta {
  run(emit: (e: DeltaEvent) => void): Promise<void>;
}

export class DeltaService {
  private readonly tmpDir: string;

  private constructor(private readonly o: DeltaServiceOptions) {
    this.tmpDir = join(o.dataRoot, 'delta-tmp');
  }

  static async open(o: DeltaServiceOptions): Promise<DeltaService> {
    const s = new DeltaService(o);
    await fs.rm(s.tmpDir, { recursive: true, force: true });
    return s;
  }

  /** Resolves both images before any output, so a missing one is a 404. */
  prepareDelta(src: string, dest: string, tag: string | undefined): PreparedDelta {
    const base = this.o.lookup(src);
    const target = this.o.lookup(dest);
    return {
      run: async (emit) => {
        // Taken before the first await: a removal from now on leaves the layers read here alone.
        const release = this.o.hold([base, target]);
        let r: Awaited<ReturnType<typeof createDelta>>;
        try {
          r = await createDelta({ layers: this.o.layers, images: this.o.images, tmpDir: this.tmpDir }, { image: base, name: src }, target, emit);
        } finally {
          await release().catch((err: unknown) => this.o.logger?.warn('removing layers after a delta', { error: (err as Error).message }));
        }
        this.o.logger?.info('delta created', {
          delta: r.image.id,
          'base-bytes': r.baseBytes,
          'index-bytes': r.indexBytes,
          'segment-bytes': r.segmentBytes,
          'target-bytes': r.normalSize,
          'delta-bytes': r.deltaSize,
        });
        emit({ status: `Created delta: ${r.image.id}` });
        if (tag) {
          await this.o.tag(r.image.id, tag);
          emit({ status: `Successfully tagged ${tag}` });
        }
      },
    };
  }
}
