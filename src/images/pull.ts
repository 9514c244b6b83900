// Pulling an image: resolve the manifest (and the platform, for a list),
// fetch the config, then stream every missing layer from the network
// through gunzip and the tar reader into its own layer directory, several
// layers at once. The image and its tags appear only after every layer is
// committed and verified. Errors up to `resolve` happen before any output,
// so the API can still answer with a real status code.
import { createHash } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { gunzipped } from '../archive/compression.js';
import { errnoCode, InvalidParameter, NotFound, SkiffError, SystemError } from '../errors.js';
import { layerCompression, parseManifest, type Descriptor } from '../pull/manifest.js';
import { formatPlatform, selectPlatform, type Platform } from '../pull/platform.js';
import { canonicalName, canonicalString, familiarString, type Reference } from '../pull/reference.js';
import { applyLayer } from '../store/apply.js';
import { chainIdsOf, diffIdsOf, imageIdOf, type ImageStore, type StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import type { RefStore } from '../store/refs.js';
import { deltaInfoOf, openDeltaBase, patchLayer, type BaseStore } from '../delta/apply.js';
import type { BaseStream } from '../delta/base.js';
import { resumableBlob } from './blobstream.js';
import { Throttle, type PullListener } from './progress.js';

/** What pull needs from a registry client. */
export interface Registry {
  getManifest(reference: string): Promise<{ mediaType: string; digest: string; body: Buffer }>;
  openBlob(digest: string, offset: number): Promise<{ body: Readable; offset: number; total: number | undefined }>;
  fetchBlob(digest: string, maxBytes: number): Promise<Buffer>;
}

export interface PullContext {
  layers: LayerStore;
  images: ImageStore;
  refs: RefStore;
  dataRoot: string;
  maxConcurrentDownloads: number;
  maxDownloadAttempts: number;
  /** First retry delay; tests shorten it. */
  retryBackoffMs: number;
  /** Remembers which blob (in which repository) each layer came from, so a push can skip or mount it. */
  recordBlobs?: (entries: Array<{ diffId: string; digest: string; size: number; registry: string; repo: string }>) => Promise<void>;
  /** A second, read-only store searched for delta bases (`--delta-data-root`). */
  deltaStore?: BaseStore;
}

export interface PullPlan {
  ref: Reference;
  manifestDigest: string;
  config: Buffer;
  layers: Descriptor[];
  diffIds: string[];
  chainIds: string[];
}

const MAX_CONFIG = 8 * 1024 * 1024;

export async function resolvePull(registry: Registry, ref: Reference, platform: Platform): Promise<PullPlan> {
  try {
    return await resolvePlan(registry, ref, platform);
  } catch (err) {
    // The registry refused the credentials (or there were none). dockerd answers a pull with 500
    // then (errdefs.Unknown): a 401 makes the docker CLI prompt for a Docker Hub login, and a
    // non-interactive `docker pull` hangs at "Username:". 401 stays for POST /auth (docker login).
    if (err instanceof SkiffError && err.kind === 'unauthorized') throw new SystemError(err.message, { cause: err });
    throw err;
  }
}

async function resolvePlan(registry: Registry, ref: Reference, platform: Platform): Promise<PullPlan> {
  const tagOrDigest = ref.digest ?? ref.tag ?? 'latest';
  let got = await registry.getManifest(tagOrDigest);
  let manifest = parseManifest(got.body, got.mediaType);
  const manifestDigest = got.digest;
  if (manifest.kind === 'index') {
    const chosen = selectPlatform(manifest.manifests, platform);
    if (!chosen) throw new NotFound(`no matching manifest for ${formatPlatform(platform)} in the manifest list entries`);
    got = await registry.getManifest(chosen.digest);
    manifest = parseManifest(got.body, got.mediaType);
    if (manifest.kind !== 'image') throw new InvalidParameter(`manifest list entry ${chosen.digest} is not an image manifest`);
  }
  const config = await registry.fetchBlob(manifest.config.digest, MAX_CONFIG);
  const diffIds = diffIdsOf(config);
  if (diffIds.length !== manifest.layers.length) {
    throw new InvalidParameter(`image config lists ${diffIds.length} layers but the manifest has ${manifest.layers.length}`);
  }
  for (const l of manifest.layers) {
    const c = layerCompression(l.mediaType);
    if (c === 'zstd') throw new InvalidParameter(`unsupported layer compression zstd (${l.digest}): skiff reads gzip and uncompressed layers`);
  }
  return { ref, manifestDigest, config, layers: manifest.layers, diffIds, chainIds: chainIdsOf(diffIds) };
}

/** Refuses early when what must be downloaded cannot fit on the data root. */
export async function checkSpace(ctx: PullContext, plan: PullPlan): Promise<void> {
  const missing = plan.layers.filter((_, i) => !ctx.layers.get(plan.chainIds[i] as string));
  // Unpacked layers are at least as big as their compressed blobs: a hard lower bound.
  const need = missing.reduce((n, l) => n + l.size, 0);
  const st = await statfs(ctx.dataRoot);
  const free = st.bavail * st.bsize;
  if (need > free) {
    throw new SystemError(
      `not enough space on ${ctx.dataRoot} to pull ${familiarString(plan.ref)}: needs at least ${need} bytes, ${free} available`,
    );
  }
}

const inflight = new Map<string, Promise<void>>();

export async function runPull(registry: Registry, ctx: PullContext, plan: PullPlan, emit: PullListener, signal?: AbortSignal): Promise<StoredImage> {
  // A delta image (balena's): its layers are patched into the target's, whose config
  // (and so image ID, DiffIDs and ChainIDs) the delta carries. Nothing is fetched for
  // target layers already here, nor at all when the target image is.
  const delta = deltaInfoOf(plan.config);
  if (delta && delta.diffIds.length !== plan.layers.length) {
    throw new InvalidParameter(`delta image has ${plan.layers.length} layers but its target has ${delta.diffIds.length}`);
  }
  const target = delta ? { config: delta.targetConfig, diffIds: delta.diffIds, chainIds: delta.chainIds } : plan;
  let base: Promise<BaseStream> | undefined;
  const deltaBase = delta
    ? () => (base ??= openDeltaBase([{ layers: ctx.layers, images: ctx.images }, ...(ctx.deltaStore ? [ctx.deltaStore] : [])], delta.base))
    : undefined;
  // Layers found here or committed on the way have no image yet: a removal meanwhile must not collect them.
  const release = ctx.images.lease([...target.chainIds, ...(delta ? (ctx.images.get(delta.base)?.chainIds ?? []) : [])]);
  try {
    return await runLayers(registry, ctx, plan, target, deltaBase, emit, signal);
  } finally {
    release();
    if (base) await (await base.catch(() => undefined))?.close();
  }
}

async function runLayers(
  registry: Registry,
  ctx: PullContext,
  plan: PullPlan,
  target: { config: Buffer; diffIds: string[]; chainIds: string[] },
  deltaBase: (() => Promise<BaseStream>) | undefined,
  emit: PullListener,
  signal?: AbortSignal,
): Promise<StoredImage> {
  const throttle = new Throttle();
  const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);
  const totals = { current: 0, total: 0 };
  const todo: number[] = [];
  const targetStored = ctx.images.get(imageIdOf(target.config)) !== undefined;
  const targetHere = deltaBase !== undefined && targetStored;
  plan.layers.forEach((l, i) => {
    if (!targetHere && !ctx.layers.get(target.chainIds[i] as string)) {
      todo.push(i);
      totals.total += l.size;
    }
  });
  // Like dockerd: an image that is already stored gets no per-layer lines at all;
  // a new image whose layers are all there shows them as "Already exists".
  if (!targetStored) {
    plan.layers.forEach((l, i) =>
      emit({ kind: 'layer', id: short(l.digest), status: todo.includes(i) ? 'Pulling fs layer' : 'Already exists' }),
    );
  }
  const emitTotal = (final = false) => {
    if (throttle.due('Total', final)) emit({ kind: 'total', current: totals.current, total: totals.total });
  };

  // Layers extract in parallel but commit bottom-up: a record whose parent is
  // not yet committed would be dropped by recovery after a crash, wasting it.
  const committed = plan.layers.map(() => {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const p = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    p.catch(() => undefined);
    return { p, resolve, reject };
  });
  plan.layers.forEach((_, i) => {
    if (!todo.includes(i)) committed[i]?.resolve();
  });

  async function pullLayer(i: number): Promise<void> {
    try {
      await pullOne(i);
      committed[i]?.resolve();
    } catch (err) {
      committed[i]?.reject(err);
      throw err;
    }
  }

  async function pullOne(i: number): Promise<void> {
    const desc = plan.layers[i] as Descriptor;
    const chainId = target.chainIds[i] as string;
    const id = short(desc.digest);
    // The same layer pulled by two images at once is downloaded once.
    const running = inflight.get(chainId);
    if (running) {
      emit({ kind: 'layer', id, status: 'Waiting' });
      await running;
      emit({ kind: 'layer', id, status: 'Already exists' });
      return;
    }
    const job = (async () => {
      // A delta's base is opened before the blob, so a missing base fails before any download.
      const base = deltaBase ? await deltaBase() : undefined;
      const blobHash = createHash('sha256');
      let current = 0;
      const compressed = resumableBlob(
        { open: (offset) => registry.openBlob(desc.digest, offset) },
        {
          attempts: ctx.maxDownloadAttempts,
          backoffMs: ctx.retryBackoffMs,
          signal,
          onRetry: (_n, delay) => {
            const s = Math.max(1, Math.round(delay / 1000));
            emit({ kind: 'layer', id, status: `Retrying in ${s} second${s === 1 ? '' : 's'}` as const });
          },
        },
      );
      async function* counted(): AsyncGenerator<Buffer> {
        for await (const c of compressed) {
          blobHash.update(c);
          current += c.length;
          totals.current += c.length;
          if (throttle.due(id)) emit({ kind: 'layer', id, status: 'Downloading', current, total: desc.size });
          emitTotal();
          yield c;
        }
        if (current !== desc.size) throw new InvalidParameter(`layer ${desc.digest}: got ${current} bytes, the manifest says ${desc.size}`);
      }
      const layerTar = layerCompression(desc.mediaType) === 'gzip' ? gunzipped(counted()) : counted();
      const tar = base ? patchLayer(layerTar, base, i) : layerTar;
      await applyLayer(ctx.layers, tar, {
        diffId: target.diffIds[i] as string,
        parent: i === 0 ? null : (target.chainIds[i - 1] as string),
        beforeCommit: async () => {
          const actual = 'sha256:' + blobHash.digest('hex');
          if (actual !== desc.digest) {
            throw new InvalidParameter(`filesystem layer verification failed for digest ${desc.digest}`);
          }
          if (i > 0) await committed[i - 1]?.p;
        },
      });
      emit({ kind: 'layer', id, status: 'Pull complete' });
    })().catch((err: unknown) => {
      // A corrupt blob usually shows up as a gzip error before the digest can be checked.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('Z_')) {
        throw new InvalidParameter(`filesystem layer verification failed for digest ${desc.digest}: ${(err as Error).message}`);
      }
      // A full data root: say so, and which layer, instead of a bare "ENOSPC: ..., write".
      if (errnoCode(err) === 'ENOSPC') {
        throw new SystemError(`no space left on device while extracting layer ${desc.digest} (ENOSPC)`, { cause: err });
      }
      throw err;
    });
    inflight.set(chainId, job);
    try {
      await job;
    } finally {
      inflight.delete(chainId);
    }
  }

  // A small worker pool: layers are independent directories, so they extract in parallel.
  const queue = [...todo];
  let failure: unknown;
  const workers = Array.from({ length: Math.max(1, Math.min(ctx.maxConcurrentDownloads, queue.length)) }, async () => {
    for (let i = queue.shift(); i !== undefined && failure === undefined; i = queue.shift()) {
      try {
        await pullLayer(i);
      } catch (err) {
        failure ??= err;
      }
    }
  });
  await Promise.all(workers);
  if (failure !== undefined) throw failure;
  if (todo.length > 0) emitTotal(true);

  const image = await ctx.images.put(target.config);
  // Only gzip'd blobs: a push declares every layer as tar+gzip. A delta's blobs are not the target's layers.
  if (!deltaBase) {
    await ctx.recordBlobs?.(
      plan.layers.flatMap((l, i) =>
        layerCompression(l.mediaType) === 'gzip' ? [{ diffId: plan.diffIds[i] as string, digest: l.digest, size: l.size, registry: plan.ref.domain, repo: plan.ref.path }] : [],
      ),
    );
  }
  const name = canonicalName(plan.ref);
  const refs: Array<[string, string]> = [[`${name}@${plan.manifestDigest}`, image.id]];
  if (!plan.ref.digest) refs.push([canonicalString(plan.ref), image.id]);
  await ctx.refs.set(refs);
  return image;
}
