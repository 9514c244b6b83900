// A real registry for pull tests: Debian's docker-registry (distribution
// 2.8) on 127.0.0.1 with a random port, a temporary storage directory and,
// optionally, htpasswd (Basic) auth. Plus a tiny push client and builders for
// deterministic fixture images. Fixtures are small, so they are built in
// memory here (the product code streams).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { request } from 'undici';
import { tempDir } from './daemon.js';

export const REGISTRY_BIN = process.env.SKIFF_REGISTRY_BIN ?? '/usr/bin/docker-registry';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** `n` deterministic, incompressible bytes. */
export function pseudoRandom(n: number, seed = 'skiff'): Buffer {
  return createHash('shake256', { outputLength: n }).update(seed).digest();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A bcrypt htpasswd line. Node has no bcrypt: perl's crypt() (perl-base is
 * essential on Debian; libxcrypt does `$2b$`) and then python3's crypt module
 * are used.
 */
export function htpasswdLine(username: string, password: string): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const rnd = randomBytes(21);
  // 22 salt characters; the last one carries 2 significant bits only: pick one whose spare bits are 0.
  const salt = Array.from(rnd, (b) => alphabet[b % 64]).join('') + 'e';
  const tries: Array<[string, string[]]> = [
    ['perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`]],
    ['python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)), end="")', password]],
  ];
  for (const [cmd, args] of tries) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    const hash = (r.stdout ?? '').trim();
    if (r.status === 0 && /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return `${username}:${hash}`;
  }
  throw new Error('cannot make a bcrypt hash: neither perl nor python3 crypt() supports $2b$');
}

export interface BasicCredentials {
  username: string;
  password: string;
}

export interface LayerEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device' | 'block-device';
  mode?: number;
  data?: string | Buffer;
  linkname?: string;
  uid?: number;
  gid?: number;
  mtime?: Date;
}

export interface Layer {
  /** The uncompressed tar. */
  tar: Buffer;
  /** The gzip'd tar: the blob. */
  gz: Buffer;
  /** sha256 of the tar. */
  diffId: string;
  /** sha256 of the gzip'd tar. */
  digest: string;
  size: number;
}

const FIXED_MTIME = new Date(1_700_000_000_000);

/** A deterministic gzip'd layer (same entries → same bytes → same digest). */
export async function makeLayer(entries: LayerEntry[]): Promise<Layer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = type === 'file' ? Buffer.from(e.data ?? '') : undefined;
    const header = {
      name: e.name,
      type,
      linkname: e.linkname,
      mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? FIXED_MTIME,
      size: data?.length ?? 0,
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (data) p.entry(header, data, cb);
      else p.entry(header, cb);
    });
  }
  p.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  const gz = gzipSync(tar, { level: 6 });
  return { tar, gz, diffId: sha256(tar), digest: sha256(gz), size: gz.length };
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ConfigOptions {
  diffIds: string[];
  platform?: Platform;
  env?: string[];
  cmd?: string[];
  entrypoint?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  /** Image VOLUME entries. */
  volumes?: string[];
  created?: string;
}

/** An image config JSON (deterministic). */
export function makeConfig(o: ConfigOptions): Buffer {
  const platform = o.platform ?? { os: 'linux', architecture: 'amd64' };
  const config: Record<string, unknown> = {
    Env: o.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: o.cmd ?? ['/bin/sh'],
  };
  if (o.entrypoint) config.Entrypoint = o.entrypoint;
  if (o.workingDir) config.WorkingDir = o.workingDir;
  if (o.user) config.User = o.user;
  if (o.labels) config.Labels = o.labels;
  if (o.volumes) config.Volumes = Object.fromEntries(o.volumes.map((v) => [v, {}]));
  const doc: Record<string, unknown> = {
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config,
    created: o.created ?? '2023-11-14T22:13:20Z',
    history: o.diffIds.map(() => ({ created: o.created ?? '2023-11-14T22:13:20Z', created_by: 'skiff test fixture' })),
    rootfs: { type: 'layers', diff_ids: o.diffIds },
  };
  return Buffer.from(JSON.stringify(doc));
}

export interface PushedImage {
  repo: string;
  tag: string | undefined;
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  config: Buffer;
  configDigest: string;
  /** = configDigest, as Docker names images. */
  imageId: string;
  layers: Layer[];
  platform: Platform;
}

export interface PushImageOptions {
  oci?: boolean;
  config?: Omit<ConfigOptions, 'diffIds' | 'platform'>;
}

/** The push side of the distribution API, enough to put fixtures in a registry. */
export class Pusher {
  constructor(
    readonly url: string,
    readonly credentials?: BasicCredentials,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.credentials) {
      h.authorization = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    }
    return h;
  }

  /** Monolithic upload: POST /blobs/uploads/ then PUT ?digest=. Returns the digest. */
  async pushBlob(repo: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const start = await request(`${this.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: this.headers({ 'content-length': '0' }) });
    await start.body.dump();
    if (start.statusCode !== 202) throw new Error(`blob upload start: HTTP ${start.statusCode}`);
    const location = start.headers.location;
    if (typeof location !== 'string') throw new Error('blob upload start: no Location');
    const put = new URL(location, this.url);
    put.searchParams.set('digest', digest);
    const res = await request(put, {
      method: 'PUT',
      headers: this.headers({ 'content-type': 'application/octet-stream', 'content-length': String(data.length) }),
      body: data,
    });
    const text = await res.body.text();
    if (res.statusCode !== 201) throw new Error(`blob upload ${digest}: HTTP ${res.statusCode} ${text}`);
    return digest;
  }

  /** PUT /manifests/<tag or digest>. Returns the manifest digest. */
  async pushManifest(repo: string, tag: string, mediaType: string, body: Buffer | string): Promise<string> {
    const buf = Buffer.from(body);
    const res = await request(`${this.url}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: this.headers({ 'content-type': mediaType, 'content-length': String(buf.length) }),
      body: buf,
    });
    const text = await res.body.text();
    if (res.statusCode !== 201) throw new Error(`manifest push ${repo}:${tag}: HTTP ${res.statusCode} ${text}`);
    return sha256(buf);
  }

  /** Pushes layers, config and a schema2 (or OCI) manifest; tags it when `tag` is given. */
  async pushImage(repo: string, tag: string | undefined, layers: Layer[], platform: Platform = { os: 'linux', architecture: 'amd64' }, opts: PushImageOptions = {}): Promise<PushedImage> {
    for (const l of layers) await this.pushBlob(repo, l.gz);
    const config = makeConfig({ ...(opts.config ?? {}), diffIds: layers.map((l) => l.diffId), platform });
    const configDigest = await this.pushBlob(repo, config);
    const mediaType = opts.oci ? MT.ociManifest : MT.dockerManifest;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: opts.oci ? MT.ociConfig : MT.dockerConfig, size: config.length, digest: configDigest },
        layers: layers.map((l) => ({ mediaType: opts.oci ? MT.ociLayer : MT.dockerLayer, size: l.size, digest: l.digest })),
      }),
    );
    const manifestDigest = await this.pushManifest(repo, tag ?? sha256(manifest), mediaType, manifest);
    return { repo, tag, manifest, manifestDigest, mediaType, config, configDigest, imageId: configDigest, layers, platform };
  }

  /** Pushes a manifest list / OCI index over already pushed images. Returns its digest and body. */
  async pushIndex(repo: string, tag: string, images: PushedImage[], opts: { oci?: boolean } = {}): Promise<{ digest: string; body: Buffer; mediaType: string }> {
    const mediaType = opts.oci ? MT.ociIndex : MT.dockerList;
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        manifests: images.map((i) => ({
          mediaType: i.mediaType,
          size: i.manifest.length,
          digest: i.manifestDigest,
          platform: { architecture: i.platform.architecture, os: i.platform.os, ...(i.platform.variant ? { variant: i.platform.variant } : {}) },
        })),
      }),
    );
    const digest = await this.pushManifest(repo, tag, mediaType, body);
    return { digest, body, mediaType };
  }
}

export interface TestRegistry extends Pusher {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>`: the domain of image references. */
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  logs(): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Protect the registry with htpasswd Basic auth; the push client uses these credentials. */
  htpasswd?: BasicCredentials;
  readyTimeoutMs?: number;
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing (Debian package docker-registry)`);
  const dir = tempDir('skiff-registry-');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await launch(dir, port, opts);
    } catch (err) {
      lastErr = err; // most likely the port was taken in between: try another
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}

async function launch(dir: string, port: number, opts: RegistryOptions): Promise<TestRegistry> {
  const storage = join(dir, 'storage');
  mkdirSync(storage, { recursive: true });
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (opts.htpasswd) {
    const file = join(dir, 'htpasswd');
    writeFileSync(file, `${htpasswdLine(opts.htpasswd.username, opts.htpasswd.password)}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: skiff-test', `    path: ${file}`);
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      gone = true;
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  for (;;) {
    try {
      const res = await request(`${url}/v2/`, { headersTimeout: 1000 });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) break;
    } catch {
      // not listening yet
    }
    if (gone || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start on ${url}:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  const pusher = new Pusher(url, opts.htpasswd);
  return Object.assign(pusher, {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    logs: () => logs,
    stop: async () => {
      if (!gone) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
