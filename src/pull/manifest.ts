// Registry manifests and image configs: JSON the caller fetched, checked strictly and turned
// into typed objects. Docker schema 2 manifests and manifest lists, OCI manifests and indexes;
// schema 1 is refused with dockerd's (28.x) message.

import { InvalidParameter } from '../errors.js';
import type { Platform } from './platform.js';
import { parseDigest } from './reference.js';

export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';
export const MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

export const MEDIA_TYPE_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

/** The manifest types skiff pulls, in the order it prefers them (no schema 1). */
export const ACCEPT_MANIFESTS: readonly string[] = Object.freeze([
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_MANIFEST,
]);
/** ACCEPT_MANIFESTS as one Accept header value. */
export const ACCEPT_MANIFESTS_HEADER = ACCEPT_MANIFESTS.join(', ');

/** Manifests larger than this are refused before parsing (as containerd and distribution do). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const LAYER_COMPRESSION: Readonly<Record<string, 'gzip' | 'zstd' | 'none'>> = {
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
};

/** Layer media types skiff can unpack. */
export const LAYER_MEDIA_TYPES: readonly string[] = Object.freeze(Object.keys(LAYER_COMPRESSION));

/** What dockerd calls the config types it refuses (its invalidManifestClassError). */
const CONFIG_CLASSES: Readonly<Record<string, string>> = {
  'application/vnd.docker.plugin.v1+json': 'plugin',
};

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface IndexManifest {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageManifest {
  kind: 'image';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export type Manifest = IndexManifest | ImageManifest;

/** How a layer blob of this media type is compressed. Throws for types that are not layers. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' {
  const c = Object.hasOwn(LAYER_COMPRESSION, mediaType) ? LAYER_COMPRESSION[mediaType] : undefined;
  if (c === undefined) throw new InvalidParameter(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return c;
}

/** Whether a layer of this media type may be fetched from its `urls` (foreign / non-distributable). */
export function isForeignLayer(mediaType: string): boolean {
  return mediaType.includes('.foreign.') || mediaType.includes('.nondistributable.');
}

/** dockerd's message for schema 1 images (their support is removed since Docker 28). */
export function schema1Error(ref?: string): InvalidParameter {
  let msg = 'Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed.';
  if (ref !== undefined && ref !== '') {
    msg += ` Suggest the author of ${ref} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2.`;
  }
  msg += ' More information at https://docs.docker.com/go/deprecated-image-specs/';
  return new InvalidParameter(msg);
}

// --- JSON checking helpers --------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(what: string, where: string, problem: string): InvalidParameter {
  return new InvalidParameter(`invalid ${what}: ${where}${where === '' ? '' : ': '}${problem}`);
}

function parseJsonObject(body: Buffer, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvalidParameter(`invalid ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!isObject(value)) throw new InvalidParameter(`invalid ${what}: not a JSON object`);
  return value;
}

function stringField(o: JsonObject, key: string, what: string, where: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined || (v === null && !required)) {
    if (required) throw bad(what, where, `missing ${key}`);
    return undefined;
  }
  if (typeof v !== 'string') throw bad(what, where, `${key} must be a string`);
  return v;
}

function stringArray(v: unknown, what: string, where: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(what, where, 'must be an array of strings');
  return v as string[];
}

function stringMap(v: unknown, what: string, where: string): Record<string, string> {
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw bad(what, where, 'must be an object of strings');
  }
  return { ...(v as Record<string, string>) };
}

// --- manifests --------------------------------------------------------------------------------

function parsePlatformField(v: unknown, where: string): Platform {
  if (!isObject(v)) throw bad('manifest', where, 'must be an object');
  const osName = stringField(v, 'os', 'manifest', where, true) as string;
  const architecture = stringField(v, 'architecture', 'manifest', where, true) as string;
  const variant = stringField(v, 'variant', 'manifest', where, false);
  if (v['os.version'] !== undefined && typeof v['os.version'] !== 'string') {
    throw bad('manifest', where, 'os.version must be a string');
  }
  if (v['os.features'] !== undefined) stringArray(v['os.features'], 'manifest', `${where}.os.features`);
  const p: Platform = { os: osName, architecture };
  if (variant !== undefined && variant !== '') p.variant = variant;
  return p;
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw bad('manifest', where, 'must be an object');
  const mediaType = stringField(v, 'mediaType', 'manifest', where, true) as string;
  if (mediaType === '') throw bad('manifest', where, 'empty mediaType');
  const digest = stringField(v, 'digest', 'manifest', where, true) as string;
  try {
    parseDigest(digest);
  } catch (err) {
    throw bad('manifest', `${where}.digest`, `${JSON.stringify(digest)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const size = v.size;
  if (size === undefined) throw bad('manifest', where, 'missing size');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw bad('manifest', `${where}.size`, 'must be a non-negative integer');
  }
  const d: Descriptor = { mediaType, digest, size };
  if (v.platform !== undefined && v.platform !== null) d.platform = parsePlatformField(v.platform, `${where}.platform`);
  if (v.urls !== undefined && v.urls !== null) d.urls = [...stringArray(v.urls, 'manifest', `${where}.urls`)];
  if (v.annotations !== undefined && v.annotations !== null) {
    d.annotations = stringMap(v.annotations, 'manifest', `${where}.annotations`);
  }
  return d;
}

function descriptorList(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw bad('manifest', '', `${where} must be an array`);
  return v.map((x, i) => parseDescriptor(x, `${where}[${i}]`));
}

/** The media type of a Content-Type header value: parameters dropped, lowercased. */
function contentMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

const KNOWN_KINDS: Readonly<Record<string, 'index' | 'image'>> = {
  [MEDIA_TYPE_DOCKER_MANIFEST_LIST]: 'index',
  [MEDIA_TYPE_OCI_INDEX]: 'index',
  [MEDIA_TYPE_DOCKER_MANIFEST]: 'image',
  [MEDIA_TYPE_OCI_MANIFEST]: 'image',
};

function kindOf(mediaType: string): 'index' | 'image' | undefined {
  return Object.hasOwn(KNOWN_KINDS, mediaType) ? KNOWN_KINDS[mediaType] : undefined;
}

function isSchema1Type(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_DOCKER_SCHEMA1 || mediaType === MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED;
}

/**
 * Parses a manifest, manifest list or index. The type is the body's `mediaType` when it has one,
 * else the Content-Type; when neither says (an OCI manifest may omit it, a registry may answer
 * application/json) the shape decides (`manifests` → OCI index, `config` → OCI manifest).
 * A Content-Type naming another known type than the body is an error, like in dockerd.
 * `ref`, when given, is named in the schema 1 message.
 */
export function parseManifest(body: Buffer, contentType: string | undefined, ref?: string): Manifest {
  if (body.length > MAX_MANIFEST_BYTES) {
    throw new InvalidParameter(`manifest too large: ${body.length} bytes (limit ${MAX_MANIFEST_BYTES})`);
  }
  const header = contentMediaType(contentType);
  if (isSchema1Type(header)) throw schema1Error(ref);
  const doc = parseJsonObject(body, 'manifest');
  if (doc.schemaVersion === 1 || doc.fsLayers !== undefined) throw schema1Error(ref);
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') throw bad('manifest', '', 'mediaType must be a string');
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : '';
  if (isSchema1Type(declared)) throw schema1Error(ref);

  let mediaType: string;
  if (declared !== '') {
    if (kindOf(header) !== undefined && header !== declared) {
      throw new InvalidParameter(`invalid manifest: Content-Type ${header} does not match the manifest's mediaType ${declared}`);
    }
    mediaType = declared;
  } else if (kindOf(header) !== undefined) {
    mediaType = header;
  } else if (doc.manifests !== undefined) {
    mediaType = MEDIA_TYPE_OCI_INDEX;
  } else if (doc.config !== undefined) {
    mediaType = MEDIA_TYPE_OCI_MANIFEST;
  } else {
    throw new InvalidParameter(`unsupported manifest media type ${JSON.stringify(header)}`);
  }
  const kind = kindOf(mediaType);
  if (kind === undefined) throw new InvalidParameter(`unsupported manifest media type ${JSON.stringify(mediaType)}`);

  // Docker schema 2 requires mediaType in the body; OCI made it optional.
  if (declared === '' && (mediaType === MEDIA_TYPE_DOCKER_MANIFEST || mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST)) {
    throw bad('manifest', '', `missing mediaType (expected ${mediaType})`);
  }
  if (doc.schemaVersion !== 2) {
    throw bad('manifest', '', `unsupported schemaVersion ${JSON.stringify(doc.schemaVersion ?? null)}`);
  }

  if (kind === 'index') {
    if (doc.config !== undefined || doc.layers !== undefined) {
      throw bad('manifest', '', `expected an index (${mediaType}) but found an image manifest`);
    }
    if (doc.manifests === undefined) throw bad('manifest', '', 'missing manifests');
    return { kind, mediaType, manifests: descriptorList(doc.manifests, 'manifests') };
  }

  if (doc.manifests !== undefined) {
    throw bad('manifest', '', `expected an image manifest (${mediaType}) but found an index`);
  }
  if (doc.config === undefined || doc.config === null) throw bad('manifest', '', 'missing config');
  const config = parseDescriptor(doc.config, 'config');
  if (config.mediaType !== MEDIA_TYPE_DOCKER_CONFIG && config.mediaType !== MEDIA_TYPE_OCI_CONFIG) {
    // dockerd's invalidManifestClassError: plugins, helm charts, other artifacts.
    const cls = Object.hasOwn(CONFIG_CLASSES, config.mediaType) ? CONFIG_CLASSES[config.mediaType] : 'unknown';
    throw new InvalidParameter(`Encountered remote ${JSON.stringify(config.mediaType)}(${cls}) when fetching`);
  }
  if (doc.layers === undefined || doc.layers === null) throw bad('manifest', '', 'missing layers');
  const layers = descriptorList(doc.layers, 'layers');
  layers.forEach((l, i) => {
    if (!Object.hasOwn(LAYER_COMPRESSION, l.mediaType)) {
      throw bad('manifest', `layers[${i}]`, `unsupported layer media type ${JSON.stringify(l.mediaType)}`);
    }
  });
  return { kind, mediaType, config, layers };
}

// --- image configs ----------------------------------------------------------------------------

export interface HealthConfig {
  Test?: string[] | null;
  /** Durations are nanoseconds, as in Docker. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The `config` of an image: Docker's container.Config (a superset of OCI's ImageConfig). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, object> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Healthcheck?: HealthConfig | null;
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild?: string[] | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number | null;
  Shell?: string[] | null;
}

export interface HistoryEntry {
  created?: string;
  author?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  [key: string]: unknown;
}

export interface RootFS {
  type: 'layers';
  diff_ids: string[];
  [key: string]: unknown;
}

/** An image config (Docker's image JSON / OCI's image config); unknown fields are kept as they are. */
export interface ImageConfig {
  /** Empty when the config does not say (old Docker images). */
  architecture: string;
  /** Empty when the config does not say (old Docker images). */
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  container?: string;
  parent?: string;
  id?: string;
  config?: ContainerConfig | null;
  container_config?: ContainerConfig | null;
  rootfs: RootFS;
  history?: HistoryEntry[] | null;
  [key: string]: unknown;
}

// Go's time.Time accepts RFC 3339 only.
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

const CONFIG_STRINGS = ['Hostname', 'Domainname', 'User', 'Image', 'WorkingDir', 'MacAddress', 'StopSignal'] as const;
const CONFIG_BOOLEANS = [
  'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'StdinOnce', 'ArgsEscaped', 'NetworkDisabled',
] as const;
/** Docker's strslice.StrSlice: a JSON string is read as a one-element list. */
const CONFIG_STRSLICES = ['Cmd', 'Entrypoint', 'Shell'] as const;
const CONFIG_STRING_LISTS = ['Env', 'OnBuild'] as const;
const CONFIG_SETS = ['ExposedPorts', 'Volumes'] as const;

function checkTime(o: JsonObject, key: string, where: string): void {
  const v = o[key];
  if (v === undefined || v === null) return;
  if (typeof v !== 'string' || !RFC3339_RE.test(v)) throw bad('image config', where, `${key} must be an RFC 3339 time`);
}

function checkInteger(v: unknown, where: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad('image config', where, 'must be an integer');
}

function parseHealthcheck(v: JsonObject, where: string): HealthConfig {
  const h: HealthConfig = { ...v };
  if (v.Test !== undefined && v.Test !== null) h.Test = [...stringArray(v.Test, 'image config', `${where}.Test`)];
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    if (v[key] !== undefined && v[key] !== null) checkInteger(v[key], `${where}.${key}`);
  }
  return h;
}

function parseContainerConfig(v: unknown, where: string): ContainerConfig | null {
  if (v === null) return null;
  if (!isObject(v)) throw bad('image config', where, 'must be an object');
  const c: ContainerConfig = { ...v };
  for (const key of CONFIG_STRINGS) {
    if (v[key] !== undefined && v[key] !== null && typeof v[key] !== 'string') {
      throw bad('image config', `${where}.${key}`, 'must be a string');
    }
  }
  for (const key of CONFIG_BOOLEANS) {
    if (v[key] !== undefined && v[key] !== null && typeof v[key] !== 'boolean') {
      throw bad('image config', `${where}.${key}`, 'must be a boolean');
    }
  }
  for (const key of CONFIG_STRSLICES) {
    const x = v[key];
    if (typeof x === 'string') c[key] = [x];
    else if (x !== undefined && x !== null) c[key] = [...stringArray(x, 'image config', `${where}.${key}`)];
  }
  for (const key of CONFIG_STRING_LISTS) {
    const x = v[key];
    if (x !== undefined && x !== null) c[key] = [...stringArray(x, 'image config', `${where}.${key}`)];
  }
  for (const key of CONFIG_SETS) {
    const x = v[key];
    if (x === undefined || x === null) continue;
    if (!isObject(x) || !Object.values(x).every((e) => e === null || isObject(e))) {
      throw bad('image config', `${where}.${key}`, 'must be an object of objects');
    }
    c[key] = { ...(x as Record<string, object>) };
  }
  if (v.Labels !== undefined && v.Labels !== null) c.Labels = stringMap(v.Labels, 'image config', `${where}.Labels`);
  if (v.StopTimeout !== undefined && v.StopTimeout !== null) checkInteger(v.StopTimeout, `${where}.StopTimeout`);
  if (v.Healthcheck !== undefined && v.Healthcheck !== null) {
    if (!isObject(v.Healthcheck)) throw bad('image config', `${where}.Healthcheck`, 'must be an object');
    c.Healthcheck = parseHealthcheck(v.Healthcheck, `${where}.Healthcheck`);
  }
  return c;
}

/**
 * Parses and checks an image config blob: rootfs must be `{type: "layers", diff_ids: [digests]}`,
 * typed fields must have their types, Cmd / Entrypoint / Shell given as a string become one-element
 * lists (as Docker reads them); everything else is kept. The caller keeps the raw bytes (the image
 * ID is their digest).
 */
export function parseImageConfig(body: Buffer): ImageConfig {
  const doc = parseJsonObject(body, 'image config');
  const architecture = stringField(doc, 'architecture', 'image config', '', false) ?? '';
  const osName = stringField(doc, 'os', 'image config', '', false) ?? '';
  for (const key of ['variant', 'os.version', 'author', 'comment', 'docker_version', 'container', 'parent', 'id']) {
    stringField(doc, key, 'image config', '', false);
  }
  if (doc['os.features'] !== undefined && doc['os.features'] !== null) stringArray(doc['os.features'], 'image config', 'os.features');
  checkTime(doc, 'created', '');

  const rootfs = doc.rootfs;
  if (!isObject(rootfs)) throw bad('image config', '', 'missing rootfs');
  if (rootfs.type !== 'layers') throw bad('image config', 'rootfs.type', `must be "layers", not ${JSON.stringify(rootfs.type ?? null)}`);
  const diffIds = rootfs.diff_ids ?? [];
  if (!Array.isArray(diffIds)) throw bad('image config', 'rootfs.diff_ids', 'must be an array');
  diffIds.forEach((d, i) => {
    if (typeof d !== 'string') throw bad('image config', `rootfs.diff_ids[${i}]`, 'must be a string');
    try {
      parseDigest(d);
    } catch (err) {
      throw bad('image config', `rootfs.diff_ids[${i}]`, `${JSON.stringify(d)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });

  const out: ImageConfig = { ...doc, architecture, os: osName, rootfs: { ...rootfs, type: 'layers', diff_ids: [...(diffIds as string[])] } };
  if (doc.config !== undefined) out.config = parseContainerConfig(doc.config, 'config');
  if (doc.container_config !== undefined) out.container_config = parseContainerConfig(doc.container_config, 'container_config');

  if (doc.history !== undefined && doc.history !== null) {
    if (!Array.isArray(doc.history)) throw bad('image config', 'history', 'must be an array');
    out.history = doc.history.map((h, i): HistoryEntry => {
      const where = `history[${i}]`;
      if (!isObject(h)) throw bad('image config', where, 'must be an object');
      for (const key of ['author', 'created_by', 'comment']) stringField(h, key, 'image config', where, false);
      checkTime(h, 'created', where);
      if (h.empty_layer !== undefined && h.empty_layer !== null && typeof h.empty_layer !== 'boolean') {
        throw bad('image config', `${where}.empty_layer`, 'must be a boolean');
      }
      return { ...h };
    });
  }
  return out;
}
