// The registry's blob upload protocol (distribution spec "push"), over the
// registry client's authorized `call`: HEAD a blob, mount it from another
// repository, upload a stream (POST, one streamed PATCH, PUT ?digest=) that
// resumes after a dropped connection from the offset the registry reports,
// and PUT a manifest.
import { createHash } from 'node:crypto';
import { InvalidParameter, SkiffError, Unavailable } from '../errors.js';
import type { RegistryAnswer, RegistryCall, RegistryClient } from '../pull/registry.js';

/** What the uploader needs of a registry client. */
export type UploadClient = Pick<RegistryClient, 'call' | 'callError'>;

export interface UploadOptions {
  /** Tries per blob (daemon.json max-download-attempts; dockerd reuses it for pushes). */
  attempts: number;
  backoffMs: number;
  signal?: AbortSignal;
  onRetry?: (attempt: number, delayMs: number) => void;
}

/**
 * The blob's bytes from the start, the same on every call (a deterministic
 * compression): a resume regenerates the stream and skips what the registry has.
 */
export type BlobSource = () => AsyncIterable<Buffer>;

export class BlobUploader {
  private readonly scope: string;
  constructor(
    private readonly client: UploadClient,
    private readonly repo: string,
  ) {
    this.scope = `repository:${repo}:pull,push`;
  }

  private call(method: string, target: string, opts: Omit<RegistryCall, 'scope'> = {}, scope = this.scope): Promise<RegistryAnswer> {
    return this.client.call(method, target, { ...opts, scope });
  }

  /** The blob's size when the repository has it. */
  async exists(digest: string): Promise<number | undefined> {
    const a = await this.call('HEAD', `/v2/${this.repo}/blobs/${digest}`);
    await a.body.dump().catch(() => undefined);
    if (a.status === 200) {
      const n = Number(a.header('content-length'));
      return Number.isSafeInteger(n) ? n : 0;
    }
    if (a.status === 404) return undefined;
    throw await this.client.callError(a, `Head "${a.url}"`);
  }

  /** Cross-repository mount; false when the registry started an upload instead (then cancelled). */
  async mount(digest: string, from: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from });
    const a = await this.call('POST', `/v2/${this.repo}/blobs/uploads/?${q}`, { headers: { 'content-length': '0' } }, `${this.scope} repository:${from}:pull`);
    await a.body.dump().catch(() => undefined);
    if (a.status === 201) return true;
    if (a.status === 202) {
      const loc = a.header('location');
      if (loc) await this.call('DELETE', loc).then((d) => d.body.dump()).catch(() => undefined);
      return false;
    }
    if (a.status === 401 || a.status === 403 || a.status === 404) return false;
    throw await this.client.callError(a, `Post "${a.url}"`);
  }

  private async start(): Promise<string> {
    const a = await this.call('POST', `/v2/${this.repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
    await a.body.dump().catch(() => undefined);
    const loc = a.header('location');
    if (a.status !== 202 || !loc) throw await this.client.callError(a, `Post "${a.url}"`);
    return new URL(loc, a.url).href;
  }

  /** How many bytes of an upload the registry holds, or undefined when it forgot the upload. */
  private async offset(location: string): Promise<{ offset: number; location: string } | undefined> {
    const a = await this.call('GET', location);
    await a.body.dump().catch(() => undefined);
    if (a.status === 404) return undefined;
    if (a.status !== 204 && a.status !== 200) throw await this.client.callError(a, `Get "${a.url}"`);
    const m = /^(?:bytes=)?0-(\d+)$/.exec(a.header('range')?.trim() ?? '');
    const loc = a.header('location');
    return { offset: m ? Number(m[1]) + 1 : 0, location: loc ? new URL(loc, a.url).href : location };
  }

  /** A small blob (an image config) in one request. */
  async putSmall(digest: string, data: Buffer): Promise<void> {
    const location = await this.start();
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    const a = await this.call('PUT', u.href, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }, body: data });
    await a.body.dump().catch(() => undefined);
    if (a.status !== 201) throw await this.client.callError(a, `Put "${a.url}"`);
  }

  /**
   * Uploads a stream whose digest is known only at its end; returns digest
   * and size. `onBytes` sees the stream's progress (for Pushing lines).
   */
  async upload(source: BlobSource, opts: UploadOptions, onProgress?: () => void): Promise<{ digest: string; size: number }> {
    let location = await this.start();
    let offset = 0;
    for (let attempt = 1; ; attempt++) {
      const hash = createHash('sha256');
      let size = 0;
      const skip = offset;
      const body = async function* (): AsyncGenerator<Buffer> {
        for await (const c of source()) {
          hash.update(c);
          const start = size;
          size += c.length;
          onProgress?.();
          if (size <= skip) continue;
          yield start >= skip ? c : c.subarray(skip - start);
        }
      };
      try {
        const a = await this.call('PATCH', location, { headers: { 'content-type': 'application/octet-stream' }, body, ...(opts.signal ? { signal: opts.signal } : {}) });
        await a.body.dump().catch(() => undefined);
        if (a.status !== 202) throw await this.client.callError(a, `Patch "${a.url}"`);
        const loc = a.header('location');
        if (loc) location = new URL(loc, a.url).href;
        const digest = `sha256:${hash.digest('hex')}`;
        const u = new URL(location);
        u.searchParams.set('digest', digest);
        const put = await this.call('PUT', u.href, { headers: { 'content-length': '0' }, body: Buffer.alloc(0) });
        await put.body.dump().catch(() => undefined);
        if (put.status !== 201) throw await this.client.callError(put, `Put "${put.url}"`);
        return { digest, size };
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        if (!retryable(err) || attempt >= opts.attempts) throw err;
        const delay = opts.backoffMs * 2 ** (attempt - 1);
        opts.onRetry?.(attempt, delay);
        await new Promise((r) => setTimeout(r, delay));
        // Where did the registry get to? A forgotten or broken upload starts over.
        const st = await this.offset(location).catch(() => undefined);
        if (st && st.offset > 0 && !(err instanceof InvalidParameter)) {
          offset = st.offset;
          location = st.location;
        } else {
          location = await this.start();
          offset = 0;
        }
      }
    }
  }

  /** PUT the manifest under a tag; returns its digest. */
  async putManifest(tag: string, mediaType: string, body: Buffer): Promise<string> {
    const a = await this.call('PUT', `/v2/${this.repo}/manifests/${tag}`, { headers: { 'content-type': mediaType, 'content-length': String(body.length) }, body });
    await a.body.dump().catch(() => undefined);
    if (a.status !== 201 && a.status !== 200) throw await this.client.callError(a, `Put "${a.url}"`);
    return `sha256:${createHash('sha256').update(body).digest('hex')}`;
  }
}

/** Connection drops and server failures are worth another try; refusals are not. */
function retryable(err: unknown): boolean {
  if (err instanceof Unavailable) return true;
  if (err instanceof SkiffError) return err.kind === 'invalid-parameter' || err.kind === 'system';
  return true;
}
