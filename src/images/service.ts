// The image service: names → images, and the image operations the API
// offers (pull, list, inspect, history, tag, remove, prune) over the stores.
import { Conflict, InvalidParameter, NotFound } from '../errors.js';
import type { Filters } from '../api/context.js';
import { decodeRegistryAuth, type AuthConfig } from '../pull/auth.js';
import { hostPlatform, parsePlatform, type Platform } from '../pull/platform.js';
import {
  canonicalName,
  canonicalString,
  familiarString,
  fromPullQuery,
  parseReference,
  withDefaultTag,
  type Reference,
} from '../pull/reference.js';
import type { ImageStore, StoredImage } from '../store/images.js';
import type { LayerStore } from '../store/layers.js';
import type { RefStore } from '../store/refs.js';
import { checkSpace, resolvePull, runPull, type PullContext, type Registry } from './pull.js';
import type { PullListener } from './progress.js';
import type { DeleteItem, HistoryItem, ImageInspect, ImageSummary, PruneReport } from './types.js';
import type { EventBus } from '../events/bus.js';
import type { BaseStore } from '../delta/apply.js';
import { labelMatches } from '../filters.js';

export type RegistryFactory = (
  ref: Reference,
  auth: AuthConfig | undefined,
) => Registry & { close(): Promise<void> | void; login(): Promise<void>; listTags(): Promise<string[]> };

export interface ImageServiceOptions {
  layers: LayerStore;
  images: ImageStore;
  refs: RefStore;
  dataRoot: string;
  registry: RegistryFactory;
  maxConcurrentDownloads: number;
  maxDownloadAttempts: number;
  retryBackoffMs?: number;
  events?: EventBus;
  recordBlobs?: PullContext['recordBlobs'];
  /** `--delta-data-root`: another store searched for delta bases. */
  deltaStore?: BaseStore;
}

interface ImageConfigJson {
  architecture?: string;
  variant?: string;
  os?: string;
  'os.version'?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  container?: string;
  container_config?: Record<string, unknown>;
  config?: Record<string, unknown> & { Labels?: Record<string, string> | null };
  history?: Array<{ created?: string; created_by?: string; empty_layer?: boolean; comment?: string }>;
}

export interface PreparedPull {
  /** Familiar name:tag, for the final status line. */
  name: string;
  /** Runs the download; events describe progress. */
  run(emit: PullListener, signal?: AbortSignal): Promise<void>;
}

export class ImageService {
  /** Which container uses an image (rmi answers 409 then); set once containers exist. */
  private inUse: (imageId: string) => string | undefined = () => undefined;

  constructor(private readonly o: ImageServiceOptions) {}

  setImageInUse(fn: (imageId: string) => string | undefined): void {
    this.inUse = fn;
  }

  private ctx(): PullContext {
    return {
      layers: this.o.layers,
      images: this.o.images,
      refs: this.o.refs,
      dataRoot: this.o.dataRoot,
      maxConcurrentDownloads: this.o.maxConcurrentDownloads,
      maxDownloadAttempts: this.o.maxDownloadAttempts,
      retryBackoffMs: this.o.retryBackoffMs ?? 1000,
      ...(this.o.recordBlobs ? { recordBlobs: this.o.recordBlobs } : {}),
      ...(this.o.deltaStore ? { deltaStore: this.o.deltaStore } : {}),
    };
  }

  /** Everything that can fail with a status code happens here, before any progress is streamed. */
  async preparePull(fromImage: string, tag: string | undefined, platform: string | undefined, authHeader: string | undefined): Promise<PreparedPull> {
    if (!fromImage) throw new InvalidParameter('fromImage is required');
    const ref = fromPullQuery(fromImage, tag);
    const want: Platform = platform ? parsePlatform(platform) : hostPlatform();
    const registry = this.o.registry(ref, decodeRegistryAuth(authHeader));
    const given = parseReference(fromImage.replace(/:$/, ''));
    if ((tag === undefined || tag === '') && given.tag === undefined && given.digest === undefined) {
      // No tag at all (`docker pull -a`, or an API client that leaves it out): dockerd pulls every tag.
      try {
        return await this.prepareAllTags(registry, { domain: ref.domain, path: ref.path }, want);
      } catch (err) {
        await registry.close();
        throw err;
      }
    }
    let plan;
    try {
      plan = await resolvePull(registry, ref, want);
      await checkSpace(this.ctx(), plan);
    } catch (err) {
      await registry.close();
      throw err;
    }
    const name = familiarString(ref);
    return {
      name,
      run: async (emit, signal) => {
        try {
          // dockerd names a digest pull by its whole reference (`reference.Canonical.String()`).
          emit({ kind: 'status', id: ref.digest ? `${canonicalName(ref)}@${ref.digest}` : (ref.tag ?? 'latest'), text: `Pulling from ${ref.path}` });
          const before = ref.digest ? this.o.refs.get(canonicalString(ref)) ?? this.o.refs.get(`${canonicalName(ref)}@${plan.manifestDigest}`) : this.o.refs.get(canonicalString(ref));
          const image = await runPull(registry, this.ctx(), plan, emit, signal);
          this.o.events?.publish('image', 'pull', canonicalString(ref).replace(/^docker\.io\/(library\/)?/, ''), { name: name });
          emit({ kind: 'status', text: `Digest: ${plan.manifestDigest}` });
          emit({ kind: 'status', text: before === image.id ? `Status: Image is up to date for ${name}` : `Status: Downloaded newer image for ${name}` });
        } finally {
          await registry.close();
        }
      },
    };
  }

  private async prepareAllTags(registry: ReturnType<RegistryFactory>, repo: Reference, want: Platform): Promise<PreparedPull> {
    const tags = await registry.listTags();
    if (tags.length === 0) throw new NotFound(`repository ${familiarString(repo)} has no tags`);
    const name = familiarString(repo);
    return {
      name,
      run: async (emit, signal) => {
        let newer = false;
        try {
          for (const t of tags) {
            const ref = { ...repo, tag: t };
            emit({ kind: 'status', id: t, text: `Pulling from ${ref.path}` });
            const plan = await resolvePull(registry, ref, want);
            const before = this.o.refs.get(canonicalString(ref));
            const image = await runPull(registry, this.ctx(), plan, emit, signal);
            if (before !== image.id) newer = true;
            emit({ kind: 'status', text: `Digest: ${plan.manifestDigest}` });
          }
          emit({ kind: 'status', text: newer ? `Status: Downloaded newer image for ${name}` : `Status: Image is up to date for ${name}` });
        } finally {
          await registry.close();
        }
      },
    };
  }

  /** `docker login`: checks the credentials against the registry; nothing is stored by the daemon. */
  async login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }> {
    const server = (auth.serveraddress ?? '').trim();
    let host = server.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
    if (host === '' || host === 'index.docker.io' || host === 'registry-1.docker.io') host = 'docker.io';
    if (!auth.username && !auth.identitytoken && !auth.registrytoken) throw new InvalidParameter('username and password are required');
    const registry = this.o.registry({ domain: host, path: '' }, auth);
    try {
      await registry.login();
    } finally {
      await registry.close();
    }
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  /** An image by full or short ID, or by reference (tag `latest` implied). */
  lookup(name: string): StoredImage {
    const found = this.find(name);
    if (!found) throw new NotFound(`No such image: ${displayName(name)}`);
    return found.image;
  }

  private find(name: string): { image: StoredImage; byRef: string | undefined } | undefined {
    const id = /^(sha256:)?[0-9a-f]{64}$/.test(name) ? (name.startsWith('sha256:') ? name : `sha256:${name}`) : undefined;
    if (id) {
      const image = this.o.images.get(id);
      return image ? { image, byRef: undefined } : undefined;
    }
    let ref: Reference | undefined;
    try {
      ref = withDefaultTag(parseReference(name));
    } catch {
      ref = undefined;
    }
    if (ref) {
      const key = canonicalString(ref.digest ? { domain: ref.domain, path: ref.path, digest: ref.digest } : ref);
      const hit = this.o.refs.get(key);
      const image = hit ? this.o.images.get(hit) : undefined;
      if (image) return { image, byRef: key };
    }
    const prefix = name.replace(/^sha256:/, '');
    if (/^[0-9a-f]{1,63}$/.test(prefix)) {
      const matches = this.o.images.list().filter((i) => i.id.slice(7).startsWith(prefix));
      if (matches.length > 1) throw new InvalidParameter(`multiple IDs found with provided prefix: ${prefix}`);
      if (matches[0]) return { image: matches[0], byRef: undefined };
    }
    return undefined;
  }

  private familiarRefs(id: string): { tags: string[]; digests: string[] } {
    const tags: string[] = [];
    const digests: string[] = [];
    for (const r of this.o.refs.refsOf(id)) {
      const ref = parseReference(r);
      (ref.digest ? digests : tags).push(familiarString(ref));
    }
    return { tags, digests };
  }

  private size(img: StoredImage): number {
    return img.chainIds.reduce((n, c) => n + (this.o.layers.get(c)?.size ?? 0), 0);
  }

  list(opts: { all: boolean; filters: Filters }): ImageSummary[] {
    const f = opts.filters;
    for (const k of f.keys()) {
      if (!['reference', 'dangling', 'label', 'before', 'since'].includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    }
    const dangling = f.get('dangling');
    if (dangling?.some((v) => !['true', 'false', '1', '0'].includes(v))) {
      throw new InvalidParameter(`invalid filter 'dangling=${dangling.join(',')}'`);
    }
    const createdOf = (name: string) => created(this.lookup(name));
    const before = f.get('before')?.map(createdOf);
    const since = f.get('since')?.map(createdOf);
    const out: ImageSummary[] = [];
    for (const img of this.o.images.list()) {
      const cfg = parseConfig(img);
      const { tags, digests } = this.familiarRefs(img.id);
      if (dangling?.length) {
        // dockerd: dangling=true keeps every image without a tag (digests or not), dangling=false
        // drops only the images with neither tags nor digests.
        const want = dangling[0] === 'true' || dangling[0] === '1';
        if (want ? tags.length > 0 : tags.length === 0 && digests.length === 0) continue;
      }
      const labels = cfg.config?.Labels ?? null;
      if (f.get('label')?.some((l) => !labelMatches(labels, l))) continue;
      const c = created(img);
      if (before?.some((b) => c >= b)) continue;
      if (since?.some((s) => c <= s)) continue;
      let shownTags = tags;
      let shownDigests = digests;
      const refFilter = f.get('reference');
      if (refFilter?.length) {
        // dockerd lists only the references that match, tags and digests alike.
        shownTags = tags.filter((t) => refFilter.some((p) => referenceMatches(p, t)));
        shownDigests = digests.filter((d) => refFilter.some((p) => referenceMatches(p, d)));
        if (shownTags.length === 0 && shownDigests.length === 0) continue;
      }
      // dockerd's placeholders for an image without any reference (inspect keeps []).
      const noRefs = tags.length === 0 && digests.length === 0;
      const size = this.size(img);
      out.push({
        Id: img.id,
        ParentId: '',
        RepoTags: noRefs ? ['<none>:<none>'] : shownTags,
        RepoDigests: noRefs ? ['<none>@<none>'] : shownDigests,
        Created: c,
        Size: size,
        VirtualSize: size,
        SharedSize: -1,
        Labels: labels,
        Containers: -1,
      });
    }
    return out.sort((a, b) => b.Created - a.Created);
  }

  inspect(name: string): ImageInspect {
    const img = this.lookup(name);
    const cfg = parseConfig(img);
    const { tags, digests } = this.familiarRefs(img.id);
    const size = this.size(img);
    const dirs = img.chainIds.map((c) => this.o.layers.diffDir(c)).reverse();
    const out: ImageInspect = {
      Id: img.id,
      RepoTags: tags,
      RepoDigests: digests,
      Parent: '',
      Comment: cfg.comment ?? '',
      Created: cfg.created ?? new Date(0).toISOString(),
      Container: cfg.container ?? '',
      ContainerConfig: withConfigDefaults(cfg.container_config ?? {}) ?? {},
      DockerVersion: cfg.docker_version ?? '',
      Author: cfg.author ?? '',
      Config: withConfigDefaults(cfg.config),
      Architecture: cfg.architecture ?? '',
      Os: cfg.os ?? '',
      Size: size,
      VirtualSize: size,
      GraphDriver: {
        Name: 'overlay2',
        Data: graphDriverData(dirs),
      },
      RootFS: { Type: 'layers', Layers: img.diffIds },
      Metadata: { LastTagTime: img.meta.lastTagTime ? new Date(img.meta.lastTagTime).toISOString() : '0001-01-01T00:00:00Z' },
    };
    if (cfg.variant) out.Variant = cfg.variant;
    if (cfg['os.version']) out.OsVersion = cfg['os.version'];
    return out;
  }

  history(name: string): HistoryItem[] {
    const img = this.lookup(name);
    const cfg = parseConfig(img);
    const hist = cfg.history ?? img.diffIds.map(() => ({}) as NonNullable<ImageConfigJson['history']>[number]);
    let layer = 0;
    const items = hist.map((h) => {
      const size = h.empty_layer ? 0 : (this.o.layers.get(img.chainIds[layer++] ?? '')?.size ?? 0);
      return {
        Id: '<missing>',
        Created: h.created ? Math.floor(Date.parse(h.created) / 1000) : 0,
        CreatedBy: h.created_by ?? '',
        Tags: null as string[] | null,
        Size: size,
        Comment: h.comment ?? '',
      };
    });
    items.reverse();
    if (items[0]) {
      items[0].Id = img.id;
      const { tags } = this.familiarRefs(img.id);
      items[0].Tags = tags.length ? tags : null;
    }
    return items;
  }

  async tag(name: string, repo: string, tag: string | undefined): Promise<void> {
    const img = this.lookup(name);
    if (!repo) throw new InvalidParameter('repository name must have at least one component');
    let ref = parseReference(repo);
    if (ref.digest) throw new InvalidParameter('refusing to create a tag with a digest reference');
    if (tag) {
      const t = parseReference(`${canonicalName(ref)}:${tag}`);
      ref = t;
    }
    ref = withDefaultTag(ref);
    await this.o.refs.set([[canonicalString(ref), img.id]]);
    img.meta.lastTagTime = Date.now();
    this.o.events?.publish('image', 'tag', img.id, { name: familiarString(ref) });
  }

  async remove(name: string, opts: { force: boolean; noprune: boolean }): Promise<DeleteItem[]> {
    const out = await this.removeRefsAndImage(name, opts);
    for (const it of out) if ('Untagged' in it) this.o.events?.publish('image', 'untag', it.Untagged, { name: it.Untagged });
    return out;
  }

  private async removeRefsAndImage(name: string, opts: { force: boolean; noprune: boolean }): Promise<DeleteItem[]> {
    const found = this.find(name);
    if (!found) throw new NotFound(`No such image: ${displayName(name)}`);
    const { image, byRef } = found;
    const out: DeleteItem[] = [];
    const user = this.inUse(image.id);
    const lastRef = this.o.refs.refsOf(image.id).filter((r) => !r.includes('@')).length <= 1;
    if (user && !opts.force && (!byRef || lastRef)) {
      const what = byRef ? `repository reference "${familiarString(parseReference(byRef))}"` : image.id.slice(7, 19);
      throw new Conflict(`conflict: unable to ${byRef ? 'remove' : 'delete'} ${what} (must force) - container ${user.slice(0, 12)} is using its referenced image ${image.id.slice(7, 19)}`);
    }
    const refs = this.o.refs.refsOf(image.id);
    const tagRefs = refs.filter((r) => !r.includes('@'));
    if (byRef) {
      await this.o.refs.delete(byRef);
      out.push({ Untagged: familiarString(parseReference(byRef)) });
      const left = this.o.refs.refsOf(image.id);
      if (left.some((r) => !r.includes('@'))) return out;
      // Only digest references left: they go with the last tag, like dockerd.
      for (const r of left) {
        await this.o.refs.delete(r);
        out.push({ Untagged: familiarString(parseReference(r)) });
      }
    } else {
      if (tagRefs.length > 1 && !opts.force) {
        throw new Conflict(`conflict: unable to delete ${image.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
      }
      for (const r of refs) {
        await this.o.refs.delete(r);
        out.push({ Untagged: familiarString(parseReference(r)) });
      }
    }
    out.push(...(await this.deleteImage(image, opts.noprune)));
    return out;
  }

  /**
   * Holds the images' layers while an operation reads them (a delta being
   * created): rmi still untags and deletes the images, as balenaEngine's
   * image lock allows, but their layers stay until the release, which then
   * removes those of them no image uses any more.
   */
  hold(images: readonly StoredImage[]): () => Promise<void> {
    const chainIds = [...new Set(images.flatMap((i) => i.chainIds))];
    const release = this.o.images.lease(chainIds);
    return async () => {
      release();
      const held = new Set(chainIds);
      for (const chainId of this.o.images.unusedLayers()) if (held.has(chainId)) await this.o.layers.remove(chainId);
    };
  }

  private async deleteImage(image: StoredImage, noprune: boolean): Promise<DeleteItem[]> {
    const out: DeleteItem[] = [];
    // A forced rmi of an image a container uses only untags it, as dockerd does.
    if (this.inUse(image.id)) return out;
    await this.o.images.delete(image.id);
    out.push({ Deleted: image.id });
    this.o.events?.publish('image', 'delete', image.id, { name: image.id });
    if (noprune) return out;
    for (const chainId of this.o.images.unusedLayers()) {
      await this.o.layers.remove(chainId);
      out.push({ Deleted: chainId });
    }
    return out;
  }

  async prune(filters: Filters): Promise<PruneReport> {
    for (const k of filters.keys()) if (!['dangling', 'label', 'until'].includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    const danglingOnly = !(filters.get('dangling') ?? ['true']).some((v) => v === 'false' || v === '0');
    const deleted: DeleteItem[] = [];
    let reclaimed = 0;
    for (const img of this.o.images.list()) {
      const tagged = this.o.refs.refsOf(img.id).some((r) => !r.includes('@'));
      if (danglingOnly && tagged) continue;
      if (this.inUse(img.id)) continue;
      const labels = parseConfig(img).config?.Labels ?? null;
      if (filters.get('label')?.some((l) => !labelMatches(labels, l))) continue;
      const before = this.o.layers.list().reduce((n, l) => n + l.size, 0);
      for (const r of this.o.refs.refsOf(img.id)) {
        await this.o.refs.delete(r);
        deleted.push({ Untagged: familiarString(parseReference(r)) });
      }
      deleted.push(...(await this.deleteImage(img, false)));
      reclaimed += before - this.o.layers.list().reduce((n, l) => n + l.size, 0);
    }
    return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  /** The images part of /system/df: shared sizes and container counts filled in. */
  diskUsage(): ImageSummary[] {
    const users = new Map<string, number>();
    for (const img of this.o.images.list()) for (const c of img.chainIds) users.set(c, (users.get(c) ?? 0) + 1);
    return this.list({ all: true, filters: new Map() }).map((s) => {
      const img = this.o.images.get(s.Id);
      const shared = (img?.chainIds ?? []).filter((c) => (users.get(c) ?? 0) > 1).reduce((n, c) => n + (this.o.layers.get(c)?.size ?? 0), 0);
      // Containers arrive with their own issue; until then no image is in use.
      return { ...s, SharedSize: shared, Containers: 0 };
    });
  }

  /** Sum of all layers' sizes, for /system/df. */
  layersSize(): number {
    return this.o.layers.list().reduce((n, l) => n + l.size, 0);
  }

  count(): number {
    return this.o.images.list().length;
  }

  /** Rebuilds every layer's tar and compares it with its DiffID. */
  async check(): Promise<Array<{ chainId: string; diffId: string; ok: boolean; actual: string }>> {
    const out = [];
    for (const l of this.o.layers.list()) out.push({ chainId: l.chainId, diffId: l.diffId, ...(await this.o.layers.verify(l.chainId)) });
    return out;
  }
}

/** dockerd marshals a whole container.Config: every field, null or empty when the image has none. */
function withConfigDefaults(c: Record<string, unknown> | undefined): Record<string, unknown> | null {
  if (!c) return null;
  return {
    Hostname: '',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: null,
    Cmd: null,
    Image: '',
    Volumes: null,
    WorkingDir: '',
    Entrypoint: null,
    OnBuild: null,
    Labels: null,
    ...c,
  };
}

function graphDriverData(diffDirs: string[]): Record<string, string> {
  const top = diffDirs[0];
  if (!top) return {};
  const dir = top.replace(/\/diff$/, '');
  const data: Record<string, string> = { MergedDir: `${dir}/merged`, UpperDir: top, WorkDir: `${dir}/work` };
  if (diffDirs.length > 1) data.LowerDir = diffDirs.slice(1).join(':');
  return data;
}

function displayName(name: string): string {
  try {
    return familiarString(withDefaultTag(parseReference(name)));
  } catch {
    return name;
  }
}

function parseConfig(img: StoredImage): ImageConfigJson {
  return JSON.parse(img.config.toString('utf8')) as ImageConfigJson;
}

function created(img: StoredImage): number {
  const c = parseConfig(img).created;
  return c ? Math.floor(Date.parse(c) / 1000) : 0;
}

/** Docker's reference filter: a shell glob over the familiar name[:tag]. */
function referenceMatches(pattern: string, ref: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('')
        .map((ch) => (ch === '*' ? '[^/]*' : ch === '?' ? '[^/]' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '$',
  );
  if (re.test(ref)) return true;
  // `busybox` also matches `busybox:latest` (and `host:5000/busybox` matches `host:5000/busybox:v1`:
  // the tag is after the last `:` that follows the last `/`, never the registry port).
  const name = ref.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  return re.test(name);
}
