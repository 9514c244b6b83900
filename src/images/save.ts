// docker save: images → one tar in the layout Docker 20.10 writes (API 1.41):
//
//   <v1 id>/VERSION, <v1 id>/json, <v1 id>/layer.tar   one directory per layer
//   <config hex>.json                                  each image's raw config
//   manifest.json    [{Config, RepoTags, Layers}]
//   repositories     {"repo": {"tag": "<top v1 id>"}}
//
// Every layer.tar is the layer's original tar rebuilt from disk (its sha256 is
// the DiffID, checked while sending); a layer two images share is written
// once and linked (`../<id>/layer.tar`), as dockerd does. Everything is
// streamed: only the layers' sizes are read before the first byte.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { NotFound, SystemError } from '../errors.js';
import { padding, tarFile, tarHeader, tarTrailer } from '../archive/writer.js';
import { canonicalName, familiarName, familiarString, parseReference, type Reference } from '../pull/reference.js';
import type { StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import type { RefStore } from '../store/refs.js';

export interface SaveDeps {
  layers: LayerStore;
  refs: RefStore;
  /** An image by ID, short ID or reference; throws NotFound. */
  lookup(name: string): StoredImage;
}

interface SavedImage {
  image: StoredImage;
  /** Familiar `repo:tag` names. */
  tags: string[];
}

/** moby's rules for `docker save NAME...`: a bare repository name saves all its tags. */
function resolveNames(deps: SaveDeps, names: string[]): SavedImage[] {
  const out = new Map<string, SavedImage>();
  const add = (image: StoredImage, tag: string | undefined) => {
    let s = out.get(image.id);
    if (!s) out.set(image.id, (s = { image, tags: [] }));
    if (tag && !s.tags.includes(tag)) s.tags.push(tag);
  };
  for (const name of names) {
    let ref: Reference | undefined;
    try {
      ref = parseReference(name);
    } catch {
      ref = undefined;
    }
    const looksLikeId = /^(sha256:)?[0-9a-f]{1,64}$/.test(name);
    if (ref && !ref.tag && !ref.digest) {
      const repo = canonicalName(ref);
      const tagged = deps.refs.all().filter(([r]) => !r.includes('@') && canonicalName(parseReference(r)) === repo);
      for (const [r, id] of tagged) {
        const image = deps.lookup(id);
        add(image, familiarString(parseReference(r)));
      }
      if (tagged.length > 0) continue;
      if (!looksLikeId) throw new NotFound(`No such image: ${familiarName(ref)}:latest`);
    }
    const image = deps.lookup(name);
    add(image, ref?.tag && !looksLikeId ? familiarString(ref) : undefined);
  }
  return [...out.values()];
}

/** Go's json.Marshal of a map: keys sorted, no spaces. */
function sortedJson(v: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])));
}

const EMPTY_CONTAINER_CONFIG = {
  Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
  Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null,
  WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
};

/** A layer's legacy v1 JSON and ID (moby's v1.CreateID: sha256 of the JSON plus layer_id and parent). */
function v1Layer(cfg: Record<string, unknown>, top: boolean, chainId: string, parent: string | undefined): { id: string; json: Buffer } {
  const base: Record<string, unknown> = top
    ? Object.fromEntries(
        ['comment', 'created', 'container', 'container_config', 'docker_version', 'author', 'config', 'architecture', 'variant', 'os']
          .filter((k) => cfg[k] !== undefined)
          .map((k) => [k, cfg[k]]),
      )
    : { created: cfg.created ?? '0001-01-01T00:00:00Z', container_config: EMPTY_CONTAINER_CONFIG };
  const forId: Record<string, unknown> = { ...base, layer_id: chainId };
  if (parent) forId.parent = `sha256:${parent}`;
  const id = createHash('sha256').update(sortedJson(forId)).digest('hex');
  const json: Record<string, unknown> = { id, ...(parent ? { parent } : {}), ...base };
  if (!top && cfg.os !== undefined) json.os = cfg.os;
  return { id, json: Buffer.from(JSON.stringify(json)) };
}

interface LayerPlan {
  dir: string;
  chainId: string;
  diffId: string;
  json: Buffer;
  /** Set when an earlier directory already holds the same tar. */
  linkTo?: string;
  size: number;
}

/**
 * Resolves the names (NotFound before any byte is sent) and returns the
 * archive as a stream. A layer whose rebuilt tar does not match its DiffID
 * destroys the stream with an error: the client sees a truncated archive.
 */
export async function saveImages(deps: SaveDeps, names: string[]): Promise<{ tar: Readable; imageIds: string[] }> {
  const saved = resolveNames(deps, names);
  const dirs = new Map<string, LayerPlan>();
  const byDiffId = new Map<string, string>();
  const files = new Map<string, Buffer>();
  const manifest: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  let mtime = 0;
  for (const { image, tags } of saved) {
    const cfg = JSON.parse(image.config.toString('utf8')) as Record<string, unknown>;
    const created = typeof cfg.created === 'string' ? Math.floor(Date.parse(cfg.created) / 1000) : 0;
    if (Number.isFinite(created)) mtime = Math.max(mtime, created);
    const layerPaths: string[] = [];
    let parent: string | undefined;
    for (let i = 0; i < image.chainIds.length; i++) {
      const chainId = image.chainIds[i] as string;
      const diffId = image.diffIds[i] as string;
      const v1 = v1Layer(cfg, i === image.chainIds.length - 1, chainId, parent);
      if (!dirs.has(v1.id)) {
        const linkTo = byDiffId.get(diffId);
        const size = linkTo ? 0 : await deps.layers.tarSize(chainId);
        dirs.set(v1.id, { dir: v1.id, chainId, diffId, json: v1.json, size, ...(linkTo ? { linkTo } : {}) });
        if (!linkTo) byDiffId.set(diffId, v1.id);
      }
      layerPaths.push(`${v1.id}/layer.tar`);
      parent = v1.id;
    }
    const configName = `${image.id.slice(7)}.json`;
    files.set(configName, image.config);
    manifest.push({ Config: configName, RepoTags: tags.length ? tags : null, Layers: layerPaths });
    for (const t of tags) {
      const r = parseReference(t);
      const repo = familiarName(r);
      (repositories[repo] ??= {})[r.tag ?? 'latest'] = parent ?? '';
    }
  }
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  if (Object.keys(repositories).length > 0) files.set('repositories', Buffer.from(JSON.stringify(repositories)));

  // dockerd archives a directory tree: entries in lexical order, a layer's files right after its directory.
  const names2 = [...dirs.keys(), ...files.keys()].sort();
  async function* gen(): AsyncGenerator<Buffer> {
    for (const name of names2) {
      const file = files.get(name);
      if (file) {
        yield tarFile(name, file, mtime);
        continue;
      }
      const l = dirs.get(name) as LayerPlan;
      yield tarHeader({ name: `${name}/`, type: 'directory', mtime });
      yield tarFile(`${name}/VERSION`, Buffer.from('1.0'), mtime);
      yield tarFile(`${name}/json`, l.json, mtime);
      if (l.linkTo) {
        yield tarHeader({ name: `${name}/layer.tar`, type: 'symlink', linkname: `../${l.linkTo}/layer.tar`, mtime, mode: 0o777 });
        continue;
      }
      yield tarHeader({ name: `${name}/layer.tar`, type: 'file', size: l.size, mtime });
      const h = createHash('sha256');
      let n = 0;
      for await (const c of deps.layers.tar(l.chainId)) {
        const b = c as Buffer;
        h.update(b);
        n += b.length;
        yield b;
      }
      const actual = `sha256:${h.digest('hex')}`;
      if (n !== l.size || actual !== l.diffId) {
        throw new SystemError(`layer ${l.diffId} could not be rebuilt from disk (got ${actual}, ${n} bytes): run skiff check`);
      }
      yield padding(l.size);
    }
    yield tarTrailer();
  }
  return { tar: Readable.from(gen(), { objectMode: false }), imageIds: saved.map((s) => s.image.id) };
}
