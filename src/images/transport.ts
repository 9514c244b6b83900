// Images in and out of the engine other than by pull: docker save, docker
// load and docker push, over the same stores the image service uses.
import type { Readable } from 'node:stream';
import type { EventBus } from '../events/bus.js';
import { decodeRegistryAuth, type AuthConfig } from '../pull/auth.js';
import { familiarName, parseReference, type Reference } from '../pull/reference.js';
import type { RegistryClient } from '../pull/registry.js';
import type { DistributionStore } from '../store/distribution.js';
import type { ImageStore, StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import type { RefStore } from '../store/refs.js';
import type { BaseStore } from '../delta/apply.js';
import { loadImages, type LoadEvent } from './load.js';
import { preparePush, type PreparedPush } from './push.js';
import { saveImages } from './save.js';

export interface TransportOptions {
  layers: LayerStore;
  images: ImageStore;
  refs: RefStore;
  /** An image by ID, short ID or reference (the image service's rules); throws NotFound. */
  lookup(name: string): StoredImage;
  /** Keeps the images' layers while they are read (see ImageService.hold). */
  hold(images: readonly StoredImage[]): () => Promise<void>;
  events?: EventBus;
  blobs: DistributionStore;
  registry(ref: Reference, auth: AuthConfig | undefined): Pick<RegistryClient, 'call' | 'callError' | 'close'>;
  maxConcurrentUploads: number;
  maxAttempts: number;
  /** First retry delay; tests shorten it. */
  retryBackoffMs?: number;
  /** `--delta-data-root`: another store searched for the bases of loaded delta images. */
  deltaStore?: BaseStore;
}

export class TransportService {
  constructor(private readonly o: TransportOptions) {}

  /** docker save: names are resolved (404) before the returned stream starts. */
  async save(names: string[]): Promise<Readable> {
    // Each image is held as its name resolves, until the archive is written or abandoned.
    const releases: Array<() => Promise<void>> = [];
    const release = async () => {
      for (const r of releases.splice(0)) await r();
    };
    const lookup = (n: string) => {
      const image = this.o.lookup(n);
      releases.push(this.o.hold([image]));
      return image;
    };
    const { tar, imageIds } = await saveImages({ layers: this.o.layers, refs: this.o.refs, lookup }, names).catch(async (err: unknown) => {
      await release();
      throw err;
    });
    tar.once('close', () => void release().catch(() => undefined));
    for (const id of imageIds) this.o.events?.publish('image', 'save', id, { name: id });
    return tar;
  }

  async load(body: AsyncIterable<Buffer>, emit: (e: LoadEvent) => void): Promise<void> {
    const announced = new Set<string>();
    const deps = { layers: this.o.layers, images: this.o.images, refs: this.o.refs, ...(this.o.deltaStore ? { deltaStore: this.o.deltaStore } : {}) };
    await loadImages(deps, body, (e) => {
      // dockerd names the image by its ID in load events, one per image.
      if (e.kind === 'loaded' && e.imageId && !announced.has(e.imageId)) {
        announced.add(e.imageId);
        this.o.events?.publish('image', 'load', e.imageId, { name: e.imageId });
      }
      emit(e);
    });
  }

  async preparePush(name: string, tag: string | undefined, authHeader: string | undefined): Promise<PreparedPush> {
    const auth = decodeRegistryAuth(authHeader);
    const repo = familiarName(parseReference(name));
    const prepared = await preparePush(
      {
        layers: this.o.layers,
        images: this.o.images,
        refs: this.o.refs,
        hold: (images) => this.o.hold(images),
        blobs: this.o.blobs,
        client: (ref) => this.o.registry(ref, auth),
        maxConcurrentUploads: this.o.maxConcurrentUploads,
        maxAttempts: this.o.maxAttempts,
        backoffMs: this.o.retryBackoffMs ?? 1000,
      },
      name,
      tag,
    );
    return {
      run: (emit, signal) =>
        prepared.run((e) => {
          // dockerd's push event: the pushed reference, and the repository as its name.
          if (e.kind === 'pushed') this.o.events?.publish('image', 'push', `${repo}:${e.tag}`, { name: repo });
          emit(e);
        }, signal),
    };
  }
}
