// The registry's blob upload protocol (distribution spec "push"), over the
// registry client's authorized `call`: HEAD a blob, mount it from another
// repository, upload a stream (POST, PATCH chunks with Content-Range, PUT
// ?digest= with the last bytes) that resumes after a dropped connection from
// the offset the registry reports, and PUT a manifest.
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
  /** Bytes per PATCH (default UPLOAD_CHUNK). */
  chunkSize?: number;
}

/**
 * Bytes per PATCH. A chunk is held in memory, and is what a connection drop
 * costs at most on a registry that keeps partial uploads. Not below 5 MiB:
 * registries on S3 multipart storage refuse smaller parts.
 */
export const UPLOAD_CHUNK = 5 * 1024 * 1024;

/** The largest chunk a registry may ask for (OCI-Chunk-Min-Length); above it, one stream. */
const MAX_CHUNK = 64 * 1024 * 1024;

/** Answers that mean "no chunks here" (range refused, too large, not allowed, or ECR's 201 that drops later chunks). */
const CHUNK_REFUSALS = new Set([201, 405, 411, 413, 416]);

/** Registries (origins) that refused chunks: their blobs go as one stream for the daemon's lifetime. */
const UNCHUNKED = new Set<string>();

class ChunksRefused extends Error {}

/**
 * The blob's bytes from the start, the same on every call (a deterministic
 * compression): a resume regenerates the stream and skips what the registry has.
 */
export type BlobSource = () => AsyncIterable<Buffer>;

/**
 * Reads an answer's body to its end so the connection can be reused. Only
 * for answers taken as they are: an error's body is what callError reports.
 */
function drain(a: RegistryAnswer): Promise<void> {
  return a.body.dump().catch(() => undefined);
}

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
    if (a.status !== 200 && a.status !== 404) throw await this.client.callError(a, `Head "${a.url}"`);
    await drain(a);
    if (a.status === 404) return undefined;
    const n = Number(a.header('content-length'));
    return Number.isSafeInteger(n) ? n : 0;
  }

  /** Cross-repository mount; false when the registry started an upload instead (then cancelled). */
  async mount(digest: string, from: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from });
    const a = await this.call('POST', `/v2/${this.repo}/blobs/uploads/?${q}`, { headers: { 'content-length': '0' } }, `${this.scope} repository:${from}:pull`);
    if (![201, 202, 401, 403, 404].includes(a.status)) throw await this.client.callError(a, `Post "${a.url}"`);
    await drain(a);
    if (a.status === 201) return true;
    if (a.status === 202) {
      const loc = a.header('location');
      if (loc) await this.call('DELETE', loc).then(drain).catch(() => undefined);
    }
    return false;
  }

  /** Starts an upload: its location, and the smallest chunk the registry takes (OCI-Chunk-Min-Length, 0 if unsaid). */
  private async start(): Promise<{ location: string; minChunk: number }> {
    const a = await this.call('POST', `/v2/${this.repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
    const loc = a.header('location');
    if (a.status !== 202 || !loc) throw await this.client.callError(a, `Post "${a.url}"`);
    await drain(a);
    const min = Number(a.header('oci-chunk-min-length') ?? 0);
    return { location: new URL(loc, a.url).href, minChunk: Number.isSafeInteger(min) && min > 0 ? min : 0 };
  }

  /**
   * How many bytes of an upload the registry holds, or undefined when it
   * forgot the upload. distribution answers `0-0` for an empty upload as for a
   * one-byte one; `known` (what we last saw acknowledged) settles it.
   */
  private async offset(location: string, known: number, signal?: AbortSignal): Promise<{ offset: number; location: string } | undefined> {
    const a = await this.call('GET', location, signal ? { signal } : {});
    if (![204, 200, 404, 400].includes(a.status)) throw await this.client.callError(a, `Get "${a.url}"`);
    await drain(a);
    if (a.status === 404 || a.status === 400) return undefined;
    const m = /^(?:bytes=)?0-(\d+)$/.exec(a.header('range')?.trim() ?? '');
    const end = m ? Number(m[1]) : -1;
    const loc = a.header('location');
    return { offset: end <= 0 && known === 0 ? 0 : end + 1, location: loc ? new URL(loc, a.url).href : location };
  }

  /** A small blob (an image config) in one request. */
  async putSmall(digest: string, data: Buffer): Promise<void> {
    await this.finish((await this.start()).location, digest, data);
  }

  /**
   * One chunk at `offset`; returns the upload's next location. A registry
   * that refuses chunks, or takes one without saying so (a Range that does
   * not end where the chunk does, a status other than 202), throws
   * ChunksRefused: the blob then goes as one stream.
   */
  private async patch(location: string, offset: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    const end = offset + data.length - 1;
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(data.length), 'content-range': `${offset}-${end}` };
    const a = await this.call('PATCH', location, { headers, body: data, ...(signal ? { signal } : {}) });
    if (a.status !== 202 && !CHUNK_REFUSALS.has(a.status)) throw await this.client.callError(a, `Patch "${a.url}"`);
    await drain(a);
    if (CHUNK_REFUSALS.has(a.status)) throw new ChunksRefused(`Patch "${a.url}": ${a.status}`);
    const range = /^(?:bytes=)?0-(\d+)$/.exec(a.header('range')?.trim() ?? '');
    if (range && Number(range[1]) !== end) throw new ChunksRefused(`Patch "${a.url}": the registry holds 0-${range[1]}, not 0-${end}`);
    const loc = a.header('location');
    return loc ? new URL(loc, a.url).href : location;
  }

  /** The rest of the blob as one streamed PATCH (dockerd's way), for registries that refuse chunks. */
  private async stream(location: string, body: () => AsyncGenerator<Buffer>, signal?: AbortSignal): Promise<string> {
    const a = await this.call('PATCH', location, { headers: { 'content-type': 'application/octet-stream' }, body, ...(signal ? { signal } : {}) });
    // Any success, as dockerd's client takes it (ECR answers 201).
    if (a.status < 200 || a.status > 299) throw await this.client.callError(a, `Patch "${a.url}"`);
    await drain(a);
    const loc = a.header('location');
    return loc ? new URL(loc, a.url).href : location;
  }

  /** The closing PUT ?digest=, carrying the last bytes (all of them for a blob smaller than a chunk). */
  private async finish(location: string, digest: string, data: Buffer, signal?: AbortSignal): Promise<void> {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(data.length) };
    const a = await this.call('PUT', u.href, { headers, body: data, ...(signal ? { signal } : {}) });
    if (a.status !== 201) throw await this.client.callError(a, `Put "${a.url}"`);
    await drain(a);
  }

  /**
   * Uploads a stream whose digest is known only at its end; returns digest
   * and size. The stream goes in chunks (PATCH with Content-Range), the last
   * one with the closing PUT, so a blob smaller than a chunk is one PUT.
   * After a dropped connection the registry is asked how far the upload got
   * (GET on the last acknowledged location) and the regenerated stream is
   * sent from there; only an upload the registry lost starts over.
   * distribution cancels an upload whose size differs from its last state
   * token, i.e. when a chunk was cut halfway: that costs the blob, a cut
   * between chunks costs nothing. `onProgress` sees the stream's progress.
   */
  async upload(source: BlobSource, opts: UploadOptions, onProgress?: () => void): Promise<{ digest: string; size: number }> {
    const signal = opts.signal;
    let chunkSize = opts.chunkSize ?? UPLOAD_CHUNK;
    let location: string | undefined;
    let committed = 0;
    let whole: { digest: string; size: number } | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!location) {
          const started = await this.start();
          location = started.location;
          chunkSize = Math.max(chunkSize, started.minChunk);
        }
        const origin = new URL(location).origin;
        const hash = createHash('sha256');
        let size = 0;
        /** The source from `committed` on; every byte hashed and counted. */
        const rest = async function* (): AsyncGenerator<Buffer> {
          for await (const c of source()) {
            hash.update(c);
            const start = size;
            size += c.length;
            onProgress?.();
            if (size <= committed) continue;
            yield start >= committed ? c : c.subarray(committed - start);
          }
        };
        let last: Buffer = Buffer.alloc(0);
        if (UNCHUNKED.has(origin) || chunkSize > MAX_CHUNK) {
          location = await this.stream(location, rest, signal);
        } else {
          // One chunk buffer, reused (a PATCH has been answered before it is refilled); it grows
          // up to a chunk as data comes, so a small layer costs little memory.
          let chunk = Buffer.allocUnsafe(Math.min(chunkSize, 64 * 1024));
          let fill = 0;
          for await (const piece of rest()) {
            for (let at = 0; at < piece.length; ) {
              if (fill === chunk.length) {
                const bigger = Buffer.allocUnsafe(Math.min(chunkSize, chunk.length * 2));
                chunk.copy(bigger, 0, 0, fill);
                chunk = bigger;
              }
              const n = piece.copy(chunk, fill, at);
              at += n;
              fill += n;
              if (fill === chunkSize) {
                location = await this.patch(location, committed, chunk, signal).catch((err: unknown) => {
                  if (err instanceof ChunksRefused) UNCHUNKED.add(origin);
                  throw err;
                });
                committed += chunkSize;
                fill = 0;
              }
            }
          }
          last = chunk.subarray(0, fill);
        }
        whole = { digest: `sha256:${hash.digest('hex')}`, size };
        await this.finish(location, whole.digest, last, signal);
        return whole;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (err instanceof ChunksRefused) {
          // Not a fault of the connection: the same attempt again, as one stream on a fresh upload.
          if (location) await this.call('DELETE', location).then(drain).catch(() => undefined);
          location = undefined;
          committed = 0;
          attempt--;
          continue;
        }
        if (!retryable(err) || attempt >= opts.attempts) throw err;
        const delay = opts.backoffMs * 2 ** (attempt - 1);
        opts.onRetry?.(attempt, delay);
        await new Promise((r) => setTimeout(r, delay));
        // Where did the registry get to? A refused digest, or a forgotten upload, starts over.
        const st = location && !(err instanceof InvalidParameter) ? await this.offset(location, committed, signal).catch(() => undefined) : undefined;
        if (st) {
          committed = st.offset;
          location = st.location;
          continue;
        }
        // The closing PUT may have landed although its answer was lost.
        if (whole && (await this.exists(whole.digest).catch(() => undefined)) === whole.size) return whole;
        location = undefined;
        committed = 0;
      }
    }
  }

  /** PUT the manifest under a tag; returns its digest. */
  async putManifest(tag: string, mediaType: string, body: Buffer): Promise<string> {
    const a = await this.call('PUT', `/v2/${this.repo}/manifests/${tag}`, { headers: { 'content-type': mediaType, 'content-length': String(body.length) }, body });
    if (a.status !== 201 && a.status !== 200) throw await this.client.callError(a, `Put "${a.url}"`);
    await drain(a);
    return `sha256:${createHash('sha256').update(body).digest('hex')}`;
  }
}

/** Connection drops and server failures are worth another try; refusals are not. */
function retryable(err: unknown): boolean {
  if (err instanceof Unavailable) return true;
  if (err instanceof SkiffError) return err.kind === 'invalid-parameter' || err.kind === 'system';
  return true;
}
