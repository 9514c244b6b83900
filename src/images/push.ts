// docker push: every tag of the image to the registry, layer by layer.
// A layer the repository has (known from pulls and earlier pushes) is
// skipped after a HEAD; one another repository of the registry has is
// mounted; the rest is uploaded: its tar rebuilt from disk and gzip'd
// deterministically, hashed while streaming (never a temp file), resumable.
// Then the config blob and a Docker schema 2 manifest.
import { gzipDeterministic } from '../archive/compression.js';
import { NotFound, SkiffError, SystemError } from '../errors.js';
import { canonicalName, familiarName, parseReference, type Reference } from '../pull/reference.js';
import type { RegistryClient } from '../pull/registry.js';
import { BlobUploader } from '../push/upload.js';
import type { DistributionStore } from '../store/distribution.js';
import type { ImageStore, StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import type { RefStore } from '../store/refs.js';
import { Throttle } from './progress.js';

export type PushEvent =
  | { kind: 'status'; text: string }
  | { kind: 'layer'; id: string; status: string; current?: number; total?: number }
  | { kind: 'pushed'; tag: string; digest: string; size: number };

export interface PushDeps {
  layers: LayerStore;
  images: ImageStore;
  refs: RefStore;
  /** Keeps the images' layers while they are uploaded (see ImageService.hold). */
  hold(images: readonly StoredImage[]): () => Promise<void>;
  blobs: DistributionStore;
  client(ref: Reference): Pick<RegistryClient, 'call' | 'callError' | 'close'>;
  maxConcurrentUploads: number;
  maxAttempts: number;
  backoffMs: number;
}

export const MT_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const MT_CONFIG = 'application/vnd.docker.container.image.v1+json';
const MT_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export interface PreparedPush {
  run(emit: (e: PushEvent) => void, signal?: AbortSignal): Promise<void>;
}

/** The tags to push: `tag` given, or every tag of the repository (docker push -a). Throws NotFound before any output. */
export async function preparePush(deps: PushDeps, name: string, tag: string | undefined): Promise<PreparedPush> {
  const given = parseReference(name);
  const repo: Reference = { domain: given.domain, path: given.path };
  const wanted = tag || given.tag;
  const repoName = canonicalName(repo);
  const targets: Array<{ tag: string; image: StoredImage }> = [];
  let repoKnown = false;
  for (const [r, id] of deps.refs.all()) {
    if (r.includes('@')) continue;
    const ref = parseReference(r);
    if (canonicalName(ref) !== repoName) continue;
    repoKnown = true;
    if (wanted && ref.tag !== wanted) continue;
    const image = deps.images.get(id);
    if (image) targets.push({ tag: ref.tag ?? 'latest', image });
  }
  // dockerd's messages (it sends them after its first progress line; skiff answers 404 before any).
  if (!repoKnown) throw new NotFound(`An image does not exist locally with the tag: ${familiarName(repo)}`);
  if (targets.length === 0) throw new NotFound(`tag does not exist: ${familiarName(repo)}:${wanted}`);
  targets.sort((a, b) => a.tag.localeCompare(b.tag));
  const client = deps.client(repo);
  const uploader = new BlobUploader(client, repo.path);
  // Held before the first await: an rmi while the registry is first asked
  // untags the images, and their layers stay until the push ends.
  const release = deps.hold(targets.map((t) => t.image));
  try {
    // Credentials and push access are checked before the stream starts.
    await uploader.exists((targets[0] as { image: StoredImage }).image.id);
  } catch (err) {
    await client.close();
    await release().catch(() => undefined);
    if (err instanceof SkiffError && (err.kind === 'unauthorized' || err.kind === 'forbidden')) {
      // As for pulls: a 401 would make the docker CLI prompt for a Docker Hub login.
      throw new SystemError(err.message, { cause: err });
    }
    throw err;
  }
  return {
    run: async (emit, signal) => {
      try {
        emit({ kind: 'status', text: `The push refers to repository [${repo.domain}/${repo.path}]` });
        for (const t of targets) await pushImage(deps, repo, uploader, t.image, t.tag, emit, signal);
      } finally {
        await client.close();
        await release().catch(() => undefined);
      }
    },
  };
}

async function pushImage(
  deps: PushDeps,
  repo: Reference,
  up: BlobUploader,
  image: StoredImage,
  tag: string,
  emit: (e: PushEvent) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const short = (d: string) => d.slice(7, 19);
  const n = image.diffIds.length;
  // Top layer first, as dockerd lists them.
  const order = [...Array(n).keys()].reverse();
  for (const i of order) emit({ kind: 'layer', id: short(image.diffIds[i] as string), status: 'Preparing' });
  order.slice(deps.maxConcurrentUploads).forEach((i) => emit({ kind: 'layer', id: short(image.diffIds[i] as string), status: 'Waiting' }));
  const results: Array<{ digest: string; size: number }> = new Array(n);
  const throttle = new Throttle();
  const record = (i: number, digest: string, size: number) =>
    deps.blobs.add([{ diffId: image.diffIds[i] as string, digest, size, registry: repo.domain, repo: repo.path }]);

  async function pushLayer(i: number): Promise<void> {
    const diffId = image.diffIds[i] as string;
    const chainId = image.chainIds[i] as string;
    const id = short(diffId);
    const known = deps.blobs.get(diffId, repo.domain);
    // Already in this repository?
    for (const loc of known.filter((l) => l.repos.includes(repo.path))) {
      const size = await up.exists(loc.digest);
      if (size !== undefined) {
        results[i] = { digest: loc.digest, size: size || loc.size };
        emit({ kind: 'layer', id, status: 'Layer already exists' });
        return;
      }
      await deps.blobs.forget(diffId, loc.digest, repo.domain, repo.path);
    }
    // In a sibling repository of the same registry: mount it.
    for (const loc of known) {
      for (const from of loc.repos.filter((r) => r !== repo.path)) {
        if (await up.mount(loc.digest, from)) {
          results[i] = { digest: loc.digest, size: loc.size };
          await record(i, loc.digest, loc.size);
          emit({ kind: 'layer', id, status: `Mounted from ${from}` });
          return;
        }
      }
    }
    const total = await deps.layers.tarSize(chainId);
    let current = 0;
    const source = () => {
      current = 0;
      const tar = deps.layers.tar(chainId);
      async function* counted(): AsyncGenerator<Buffer> {
        for await (const c of tar) {
          current += (c as Buffer).length;
          if (throttle.due(id)) emit({ kind: 'layer', id, status: 'Pushing', current, total });
          yield c as Buffer;
        }
      }
      return gzipDeterministic(counted());
    };
    const { digest, size } = await up.upload(source, {
      attempts: deps.maxAttempts,
      backoffMs: deps.backoffMs,
      signal,
      onRetry: (_n, delay) => {
        const s = Math.max(1, Math.round(delay / 1000));
        emit({ kind: 'layer', id, status: `Retrying in ${s} second${s === 1 ? '' : 's'}` });
      },
    });
    emit({ kind: 'layer', id, status: 'Pushing', current: total, total });
    await record(i, digest, size);
    results[i] = { digest, size };
    emit({ kind: 'layer', id, status: 'Pushed' });
  }

  const queue = [...order];
  let failure: unknown;
  const workers = Array.from({ length: Math.max(1, Math.min(deps.maxConcurrentUploads, queue.length)) }, async () => {
    for (let i = queue.shift(); i !== undefined && failure === undefined; i = queue.shift()) {
      if (signal?.aborted) failure ??= new SystemError('push cancelled');
      try {
        await pushLayer(i);
      } catch (err) {
        failure ??= err;
      }
    }
  });
  await Promise.all(workers);
  if (failure !== undefined) throw failure;

  const configDigest = image.id;
  if ((await up.exists(configDigest)) === undefined) await up.putSmall(configDigest, image.config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    config: { mediaType: MT_CONFIG, size: image.config.length, digest: configDigest },
    layers: results.map((r) => ({ mediaType: MT_LAYER, size: r.size, digest: r.digest })),
  };
  // distribution's schema2 serialisation: three-space indentation.
  const body = Buffer.from(JSON.stringify(manifest, null, 3));
  const digest = await up.putManifest(tag, MT_MANIFEST, body);
  await deps.refs.set([[`${canonicalName(repo)}@${digest}`, image.id]]);
  emit({ kind: 'status', text: `${tag}: digest: ${digest} size: ${body.length}` });
  emit({ kind: 'pushed', tag, digest, size: body.length });
}
