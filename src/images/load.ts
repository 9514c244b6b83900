// docker load: one pass over the archive (plain or gzip'd), docker save's
// layout (manifest.json, legacy `<id>/layer.tar`, Docker 25's blobs/) or an
// OCI image layout (oci-layout, index.json, blobs/sha256/…).
//
// A tar's member order is not fixed (docker save puts manifest.json near the
// end), so every layer member is extracted as it streams past into a pending
// layer (uncommitted: recovery removes it after a crash) and keyed by its
// path; small JSON members are kept. When the archive ends, each image's
// config names its DiffIDs, the manifest names the members; all of it is
// checked before anything is committed, then layers commit bottom-up and the
// images and tags appear. Pending layers nobody referenced are discarded.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { errnoCode, InvalidParameter, SkiffError, SystemError } from '../errors.js';
import { decompressed, peek, compressionOf, gunzipped } from '../archive/compression.js';
import { readTar } from '../archive/reader.js';
import { parseManifest, type Descriptor } from '../pull/manifest.js';
import { hostPlatform, selectPlatform } from '../pull/platform.js';
import { canonicalString, familiarString, parseReference, withDefaultTag } from '../pull/reference.js';
import { applyLayer, extractPending, type PendingLayer } from '../store/apply.js';
import { chainIdsOf, diffIdsOf, type ImageStore, type StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import type { RefStore } from '../store/refs.js';
import { applyDeltaImage as patchDeltaImage, LABEL_CONFIG, type BaseStore } from '../delta/apply.js';
import { deltaLayerFromDir } from '../delta/layer.js';

export type LoadEvent =
  | { kind: 'progress'; id: string; current: number; total: number }
  | { kind: 'loaded'; text: string; imageId?: string };

export interface LoadDeps {
  layers: LayerStore;
  images: ImageStore;
  refs: RefStore;
  /** `--delta-data-root`: another store searched for delta bases. */
  deltaStore?: BaseStore;
}

/** An image of the archive, checked, ready to commit. */
export interface LoadedImage {
  config: Buffer;
  diffIds: string[];
  /** The archive member holding each layer (one per DiffID). */
  layers: PendingLayer[];
  /** Canonical references to point at the image. */
  tags: string[];
}

const MAX_JSON = 8 * 1024 * 1024;

interface Member {
  pending: PendingLayer;
  /** sha256 of the member's bytes, for members named by it (blobs/sha256/…). */
  digest?: string;
  /** chainId it was committed under, once committed. */
  committed?: string;
}

/**
 * Reads the archive and stores its images. Throws InvalidParameter for a
 * malformed archive; the store is unchanged then.
 */
export async function loadImages(deps: LoadDeps, body: AsyncIterable<Buffer>, emit: (e: LoadEvent) => void): Promise<void> {
  const members = new Map<string, Member>();
  const json = new Map<string, Buffer>();
  const links = new Map<string, string>();
  const digests = new Map<string, string>();
  try {
    let src: AsyncIterable<Buffer>;
    try {
      src = await decompressed(body, 'the archive');
    } catch (err) {
      throw asArchiveError(err);
    }
    const { entries, trailer } = readTar(src);
    try {
      for await (const e of entries) {
        const name = clean(e.header.name);
        if (e.header.type === 'symlink') {
          links.set(name, clean(posix.join(posix.dirname(name), e.header.linkname)));
          continue;
        }
        if (e.header.type === 'link') {
          links.set(name, clean(e.header.linkname));
          continue;
        }
        if (e.header.type !== 'file') continue;
        const isBlob = /^blobs\/sha256\/[0-9a-f]{64}$/.test(name);
        const isLayer = name.endsWith('/layer.tar') || isBlob;
        const isJson = name === 'repositories' || (name.endsWith('.json') && !name.endsWith('/json'));
        if (!isLayer && !isJson) continue; // `<id>/json`, VERSION, oci-layout: nothing load needs
        // Only blobs are named by their digest: a legacy layer.tar is hashed once, by its extraction (the DiffID).
        const hash = name.startsWith('blobs/') ? createHash('sha256') : undefined;
        let seen = 0;
        const total = e.header.size;
        const id = (isBlob ? name.slice(13) : name.slice(0, name.indexOf('/'))).slice(0, 12);
        async function* counted(): AsyncGenerator<Buffer> {
          for await (const c of e.body) {
            hash?.update(c);
            seen += c.length;
            if (isLayer) emit({ kind: 'progress', id, current: seen, total });
            yield c;
          }
        }
        const { head, all } = await peek(counted(), 1);
        if (isJson || (head[0] === 0x7b && total <= MAX_JSON)) {
          if (total > MAX_JSON) throw new InvalidParameter(`invalid archive: ${name} is larger than ${MAX_JSON} bytes`);
          const chunks: Buffer[] = [];
          for await (const c of all) chunks.push(c);
          json.set(name, Buffer.concat(chunks));
          if (isBlob && hash) digests.set(name, `sha256:${hash.digest('hex')}`);
          continue;
        }
        const pending = await extractPending(deps.layers, await layerTar(all, name));
        // Anything after the layer's own end-of-archive is part of the member, and of its digest.
        for await (const _ of all) void _;
        members.set(name, { pending, ...(hash ? { digest: `sha256:${hash.digest('hex')}` } : {}) });
      }
      trailer();
    } catch (err) {
      throw asArchiveError(err);
    }
    for (const name of json.keys()) {
      const d = digests.get(name);
      if (d && d !== `sha256:${name.slice(13)}`) throw new InvalidParameter(`invalid archive: blob ${name} does not match its digest (${d})`);
    }
    for (const [name, m] of members) {
      if (name.startsWith('blobs/') && m.digest !== `sha256:${name.slice(13)}`) {
        throw new InvalidParameter(`invalid archive: blob ${name} does not match its digest (${m.digest})`);
      }
    }

    const resolve = (path: string): string => {
      let p = clean(path);
      for (let hops = 0; links.has(p) && hops < 16; hops++) p = links.get(p) as string;
      return p;
    };
    const plan = json.has('manifest.json') ? dockerImages(json, members, resolve) : ociImages(json, members, resolve);

    // Everything is checked: now the store changes.
    for (const img of plan) {
      if (isDeltaImage(img.config)) {
        await applyDeltaImage(deps, img, emit);
        continue;
      }
      await commitImage(deps, img, members, emit);
    }
  } finally {
    for (const m of members.values()) if (!m.committed) await m.pending.abort().catch(() => undefined);
  }
}

function isDeltaImage(config: Buffer): boolean {
  const labels = (JSON.parse(config.toString('utf8')) as { config?: { Labels?: Record<string, string> | null } }).config?.Labels;
  return !!labels && LABEL_CONFIG in labels;
}

/**
 * The one place a loaded delta image goes. `img.config` carries the labels
 * (io.resin.delta.base, io.resin.delta.config); its layers are extracted but
 * not committed in `img.layers` (a changed layer's tar holds one file,
 * `<diffDir>/delta`; a common one is empty). Whatever is not committed here
 * is discarded when the load ends.
 */
async function applyDeltaImage(deps: LoadDeps, img: LoadedImage, emit: (e: LoadEvent) => void): Promise<StoredImage> {
  const image = await patchDeltaImage(
    { layers: deps.layers, images: deps.images, bases: [{ layers: deps.layers, images: deps.images }, ...(deps.deltaStore ? [deps.deltaStore] : [])] },
    img.config,
    (i) => deltaLayerFromDir((img.layers[i] as PendingLayer).diffDir),
  );
  return tagLoaded(deps, image, img.tags, emit);
}

async function commitImage(deps: LoadDeps, img: LoadedImage, members: Map<string, Member>, emit: (e: LoadEvent) => void): Promise<StoredImage> {
  const chainIds = chainIdsOf(img.diffIds);
  const byPending = new Map<PendingLayer, Member>([...members.values()].map((m) => [m.pending, m]));
  // Until the image is stored its layers are only leased: a removal meanwhile leaves them.
  const release = deps.images.lease(chainIds);
  try {
    return await commitLayers(deps, img, chainIds, byPending, emit);
  } finally {
    release();
  }
}

async function commitLayers(deps: LoadDeps, img: LoadedImage, chainIds: string[], byPending: Map<PendingLayer, Member>, emit: (e: LoadEvent) => void): Promise<StoredImage> {
  for (let i = 0; i < chainIds.length; i++) {
    const chainId = chainIds[i] as string;
    if (deps.layers.get(chainId)) continue;
    const parent = i === 0 ? null : (chainIds[i - 1] as string);
    const m = byPending.get(img.layers[i] as PendingLayer) as Member;
    if (!m.committed) {
      m.committed = chainId;
      await m.pending.commit(parent);
    } else {
      // The same tar under another parent (OCI archives share blobs): copy it from the store.
      await applyLayer(deps.layers, deps.layers.tar(m.committed), { diffId: img.diffIds[i] as string, parent });
    }
  }
  return tagLoaded(deps, await deps.images.put(img.config), img.tags, emit);
}

/** Points the archive's tags at the image and reports it, as dockerd does. */
async function tagLoaded(deps: LoadDeps, image: StoredImage, tags: string[], emit: (e: LoadEvent) => void): Promise<StoredImage> {
  for (const t of tags) {
    const prev = deps.refs.get(t);
    if (prev && prev !== image.id) {
      emit({ kind: 'loaded', text: `The image ${familiarString(parseReference(t))} already exists, renaming the old one with ID ${prev} to empty string\n` });
    }
  }
  if (tags.length > 0) await deps.refs.set(tags.map((t) => [t, image.id]));
  image.meta.lastTagTime = Date.now();
  if (tags.length === 0) emit({ kind: 'loaded', text: `Loaded image ID: ${image.id}\n`, imageId: image.id });
  for (const t of tags) emit({ kind: 'loaded', text: `Loaded image: ${familiarString(parseReference(t))}\n`, imageId: image.id });
  return image;
}

function layerFor(members: Map<string, Member>, path: string, resolve: (p: string) => string, what: string): Member {
  const m = members.get(resolve(path));
  if (!m) throw new InvalidParameter(`invalid archive: ${what} ${path} is missing`);
  return m;
}

function configOf(json: Map<string, Buffer>, path: string): { config: Buffer; diffIds: string[] } {
  const config = json.get(path);
  if (!config) throw new InvalidParameter(`invalid archive: image config ${path} is missing`);
  return { config, diffIds: diffIdsOf(config) };
}

function checkDiffIds(diffIds: string[], layers: Member[]): void {
  if (diffIds.length !== layers.length) {
    throw new InvalidParameter(`invalid archive: the config lists ${diffIds.length} layers, the manifest ${layers.length}`);
  }
  layers.forEach((m, i) => {
    if (m.pending.diffId !== diffIds[i]) {
      throw new InvalidParameter(`invalid diffID for layer ${i}: expected "${diffIds[i]}", got "${m.pending.diffId}"`);
    }
  });
}

/** docker save's manifest.json: [{Config, RepoTags, Layers}]. */
function dockerImages(json: Map<string, Buffer>, members: Map<string, Member>, resolve: (p: string) => string): LoadedImage[] {
  let manifest: unknown;
  try {
    manifest = JSON.parse((json.get('manifest.json') as Buffer).toString('utf8'));
  } catch (err) {
    throw new InvalidParameter(`invalid archive: manifest.json: ${(err as Error).message}`);
  }
  if (!Array.isArray(manifest)) throw new InvalidParameter('invalid archive: manifest.json is not a list');
  return manifest.map((entry: unknown) => {
    const e = entry as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
      throw new InvalidParameter('invalid archive: a manifest.json entry lacks Config or Layers');
    }
    const { config, diffIds } = configOf(json, resolve(e.Config));
    const layers = (e.Layers as string[]).map((l) => layerFor(members, l, resolve, 'layer'));
    checkDiffIds(diffIds, layers);
    const tags = (Array.isArray(e.RepoTags) ? e.RepoTags : []).map((t: unknown) => {
      if (typeof t !== 'string') throw new InvalidParameter('invalid archive: RepoTags must be strings');
      const ref = withDefaultTag(parseReference(t));
      if (ref.digest) throw new InvalidParameter(`invalid archive: ${t} is not a tag`);
      return canonicalString(ref);
    });
    return { config, diffIds, layers: layers.map((m) => m.pending), tags };
  });
}

/** An OCI image layout: index.json → manifests (or nested indexes, this platform chosen) → config and layer blobs. */
function ociImages(json: Map<string, Buffer>, members: Map<string, Member>, resolve: (p: string) => string): LoadedImage[] {
  const index = json.get('index.json');
  if (!index) throw new InvalidParameter('invalid archive: neither manifest.json nor index.json found (not a docker save or OCI image archive)');
  const blobPath = (d: string) => `blobs/${d.replace(':', '/')}`;
  const blobJson = (d: string): Buffer => {
    const b = json.get(resolve(blobPath(d)));
    if (!b) throw new InvalidParameter(`invalid archive: blob ${d} is missing`);
    return b;
  };
  const out: LoadedImage[] = [];
  const host = hostPlatform();
  const visit = (desc: Descriptor, body: Buffer, name: string | undefined, depth: number): void => {
    const m = parseManifest(body, desc.mediaType);
    if (m.kind === 'index') {
      if (depth > 4) throw new InvalidParameter('invalid archive: indexes nested too deeply');
      // index.json lists images (each entry that fits this platform); a nested index is one image's platforms.
      const chosen = depth === 0 ? m.manifests.filter((c) => !c.platform || selectPlatform([c], host)) : [selectPlatform(m.manifests, host)].filter((x): x is Descriptor => !!x);
      if (depth > 0 && chosen.length === 0) throw new InvalidParameter('invalid archive: no manifest for this platform');
      for (const c of chosen) visit(c, blobJson(c.digest), name ?? imageName(c), depth + 1);
      return;
    }
    const { config, diffIds } = configOf(json, resolve(blobPath(m.config.digest)));
    const layers = m.layers.map((l) => layerFor(members, blobPath(l.digest), resolve, 'layer blob'));
    checkDiffIds(diffIds, layers);
    out.push({ config, diffIds, layers: layers.map((x) => x.pending), tags: name ? [name] : [] });
  };
  visit({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: '', size: index.length }, index, undefined, 0);
  if (out.length === 0) throw new InvalidParameter('invalid archive: index.json names no image for this platform');
  return out;
}

/** The reference an OCI index entry names: containerd's full name, or ref.name when it is a whole reference (not just a tag). */
function imageName(d: Descriptor): string | undefined {
  const candidates = [d.annotations?.['io.containerd.image.name'], d.annotations?.['org.opencontainers.image.ref.name']];
  for (const [i, v] of candidates.entries()) {
    if (!v || (i === 1 && !v.includes('/') && !v.includes(':'))) continue;
    try {
      const ref = parseReference(v);
      if (!ref.digest) return canonicalString(withDefaultTag(ref));
    } catch {
      // not a reference: the image stays untagged
    }
  }
  return undefined;
}

/** A layer member's tar: gzip'd layers (OCI) are inflated; zstd is refused. */
async function layerTar(src: AsyncIterable<Buffer>, name: string): Promise<AsyncIterable<Buffer>> {
  const { head, all } = await peek(src, 6);
  const c = compressionOf(head);
  if (c === 'none') return all;
  if (c === 'gzip') return gunzipped(all);
  throw new InvalidParameter(`invalid archive: layer ${name} is ${c}-compressed: skiff reads plain and gzip'd layers`);
}

function clean(p: string): string {
  return posix.normalize(p).replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
}

/** Errors while reading the archive: bad tar or gzip data is the client's (400); disk errors stay system errors. */
function asArchiveError(err: unknown): unknown {
  if (err instanceof SkiffError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_')) return new InvalidParameter(`invalid archive: ${(err as Error).message}`);
  if (errnoCode(err) === 'ENOSPC') return new SystemError('no space left on device while loading the archive (ENOSPC)', { cause: err });
  return err;
}
