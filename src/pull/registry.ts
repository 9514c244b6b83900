// A client for one repository of a Registry v2 / OCI distribution registry,
// over undici with one keep-alive agent per client.
//
// Endpoints: docker.io is reached at registry-1.docker.io, after the
// configured mirrors (a mirror that fails, whatever the error, is skipped for
// that call; one that cannot be reached is skipped for the client's life).
// Other registries use https; an insecure registry (listed by host[:port] or
// CIDR, plus 127.0.0.0/8, ::1 and localhost, which are always insecure) is
// tried with https without certificate checks first and then with plain http,
// like dockerd; the scheme that answered is remembered for the process.
//
// Auth: the first request to an endpoint is GET /v2/, whose 401 challenge
// tells how to authenticate (Basic, or Bearer with a token server); the
// Authenticator then authorizes every request up front. A 401 on a later
// request (new challenge, expired or revoked token) gets one retry.
//
// Blobs are streamed, never buffered: openBlob returns the response body
// behind a stall guard (no byte for readTimeoutMs while the consumer waits =
// the stream is destroyed with an Unavailable error). Redirects (to a CDN or
// S3) are followed by hand so that the registry's Authorization is never sent
// to another origin.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { STATUS_CODES } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { Forbidden, InvalidParameter, NotFound, SkiffError, SystemError, Unauthorized, Unavailable, messageOf } from '../errors.js';
import {
  Authenticator,
  formatRegistryError,
  parseChallenges,
  parseRegistryErrors,
  readLimited,
  type AuthConfig,
  type Authorization,
  type Challenge,
} from './auth.js';

/** The part of a parsed image reference the client needs (compatible with reference.ts's Reference). */
export interface RepositoryName {
  /** Registry host[:port], `docker.io` for Docker Hub. */
  domain: string;
  /** Repository path, `library/busybox` for an official image. */
  path: string;
}

export interface RegistryClientOptions {
  /** host[:port] names and CIDRs (daemon.json `insecure-registries`). */
  insecureRegistries: string[];
  /** Mirror base URLs (daemon.json `registry-mirrors`); used only for docker.io. */
  mirrors: string[];
  auth?: AuthConfig;
  userAgent: string;
  /** TCP/TLS connect timeout. Default 15 s. */
  connectTimeoutMs?: number;
  /** Longest wait for response headers or for the next body bytes. Default 30 s. */
  readTimeoutMs?: number;
}

export interface ManifestResponse {
  /** The Content-Type the registry sent (parameters dropped), or sniffed from the body when missing or generic. */
  mediaType: string;
  /** `sha256:…` of the body (or the requested digest, verified). */
  digest: string;
  body: Buffer;
}

export interface BlobStream {
  /** The blob's bytes from `offset` on. Errors (cut connection, stall, short body) arrive as an 'error' event. */
  body: Readable;
  /**
   * Where `body` starts. Equal to the requested offset, or 0 when the registry
   * ignored the Range header and sent the whole blob (200 instead of 206): the
   * caller must then restart its byte count and hashes from scratch.
   */
  offset: number;
  /** The blob's full size when the registry told it. */
  total: number | undefined;
}

export interface RegistryCall {
  headers?: Record<string, string>;
  /** A buffer, or a function giving a fresh stream (called once per attempt). */
  body?: Buffer | (() => AsyncIterable<Buffer>);
  scope: string;
  /** Aborts the request (a client that went away). */
  signal?: AbortSignal;
}

export interface RegistryAnswer {
  status: number;
  header(name: string): string | undefined;
  body: Dispatcher.ResponseData['body'];
  /** The absolute URL that answered. */
  url: string;
}

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

/** Accept header for manifests: schema 2, lists, OCI, and schema 1 (so that the caller can refuse it by name). */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerSchema1Signed,
  MEDIA_TYPES.dockerSchema1,
].join(', ');

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 10;
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const HUB_ORIGIN = 'registry-1.docker.io';

/** Working scheme of insecure registries, by host[:port], for the whole process. */
const schemeCache = new Map<string, 'https' | 'http'>();

/**
 * Whether a registry host[:port] is insecure: listed by name, or its address
 * (literal, or any of `resolved`) in a listed CIDR or in 127.0.0.0/8 or ::1;
 * `localhost` always is.
 */
export function isInsecureRegistry(host: string, insecure: string[], resolved: string[] = []): boolean {
  const h = host.toLowerCase();
  const cidrs = new BlockList();
  cidrs.addSubnet('127.0.0.0', 8, 'ipv4');
  cidrs.addAddress('::1', 'ipv6');
  for (const entry of insecure) {
    const e = entry.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (e === h) return true;
    const slash = e.indexOf('/');
    if (slash > 0) {
      const addr = e.slice(0, slash);
      const bits = Number(e.slice(slash + 1));
      const family = isIP(addr);
      if (family !== 0 && Number.isInteger(bits)) {
        try {
          cidrs.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6');
        } catch {
          // a malformed CIDR matches nothing
        }
      }
    }
  }
  const name = hostnameOf(h);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const addrs = isIP(name) !== 0 ? [name] : resolved;
  return addrs.some((a) => {
    const fam = isIP(a);
    if (fam === 0) return false;
    if (fam === 6 && a.toLowerCase().startsWith('::ffff:') && isIP(a.slice(7)) === 4) return cidrs.check(a.slice(7), 'ipv4');
    return cidrs.check(a, fam === 4 ? 'ipv4' : 'ipv6');
  });
}

/** `[::1]:5000` → `::1`, `reg:5000` → `reg`. */
function hostnameOf(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : host;
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0 && host.indexOf(':') === colon) return host.slice(0, colon);
  return host;
}

/** The short name Docker prints: `busybox` for docker.io/library/busybox, `127.0.0.1:5000/a` elsewhere. */
function familiarName(name: RepositoryName): string {
  if (HUB_HOSTS.has(name.domain)) {
    const parts = name.path.split('/');
    return parts.length === 2 && parts[0] === 'library' ? (parts[1] as string) : name.path;
  }
  return `${name.domain}/${name.path}`;
}

interface Endpoint {
  /** As configured: a mirror URL, or the registry host[:port]. */
  label: string;
  host: string;
  mirror: boolean;
  /** `https://host[/prefix]` without a trailing slash, once known. */
  base: string | undefined;
  /** https without certificate verification. */
  insecureTls: boolean;
  challenges: Challenge[];
  ready: Promise<void> | undefined;
  /** A mirror that could not be reached: skipped from then on. */
  down: boolean;
}

interface Sent {
  res: Dispatcher.ResponseData;
  url: string;
}

function headerOf(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function contentLength(res: Dispatcher.ResponseData): number | undefined {
  const v = headerOf(res.headers, 'content-length');
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v);
}

export class RegistryClient {
  readonly name: RepositoryName;
  private readonly opts: RegistryClientOptions;
  private readonly agent: Agent;
  private insecureAgent: Agent | undefined;
  private readonly auth: Authenticator;
  private readonly endpoints: Endpoint[];
  private readonly readTimeoutMs: number;
  private readonly scope: string;

  constructor(name: RepositoryName, opts: RegistryClientOptions) {
    this.name = { domain: name.domain, path: name.path };
    this.opts = opts;
    this.readTimeoutMs = opts.readTimeoutMs ?? 30_000;
    // No repository (docker login): the token is asked for without a scope.
    this.scope = name.path ? `repository:${name.path}:pull` : '';
    this.agent = this.makeAgent(true);
    this.auth = new Authenticator({
      auth: opts.auth,
      userAgent: opts.userAgent,
      dispatcherFor: (url) => this.dispatcherFor(url),
      timeoutMs: this.readTimeoutMs,
    });
    const hub = HUB_HOSTS.has(name.domain);
    this.endpoints = [];
    if (hub) {
      for (const m of opts.mirrors) {
        let u: URL;
        try {
          u = new URL(m);
        } catch {
          continue; // daemon config validation reports bad mirrors; here they are skipped
        }
        if (u.protocol !== 'https:' && u.protocol !== 'http:') continue;
        this.endpoints.push({
          label: m,
          host: u.host,
          mirror: true,
          base: `${u.origin}${u.pathname.replace(/\/+$/, '')}`,
          insecureTls: u.protocol === 'https:' && isInsecureRegistry(u.host, opts.insecureRegistries),
          challenges: [],
          ready: undefined,
          down: false,
        });
      }
    }
    const host = hub ? HUB_ORIGIN : name.domain;
    this.endpoints.push({ label: host, host, mirror: false, base: undefined, insecureTls: false, challenges: [], ready: undefined, down: false });
  }

  /**
   * Checks credentials the way `docker login` does: an authorized GET /v2/
   * on the registry itself (never a mirror).
   */
  async login(): Promise<void> {
    const ep = this.endpoints[this.endpoints.length - 1] as Endpoint;
    const sent = await this.send(ep, '/v2/', {}, false);
    const status = sent.res.statusCode;
    await sent.res.body.dump().catch(() => {});
    if (status === 401 || status === 403) {
      throw new Unauthorized(`Get "${sent.url}": unauthorized: incorrect username or password`);
    }
    if (status >= 400) throw new Unavailable(`Get "${sent.url}": received unexpected HTTP status: ${status}`);
  }

  /** Token requests sent so far (tests, debug logs). */
  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  /**
   * Fetches a manifest (or index) by tag or digest. When `reference` is a
   * digest the body is verified against it. Throws NotFound (with Docker's
   * messages) when the manifest, the repository or the access is missing,
   * Unauthorized when the credentials are refused, Unavailable when the
   * registry cannot be reached or fails (5xx, 429).
   */
  async getManifest(reference: string): Promise<ManifestResponse> {
    const byDigest = DIGEST_RE.test(reference);
    if (!byDigest && !TAG_RE.test(reference)) throw new InvalidParameter(`invalid tag or digest: ${JSON.stringify(reference)}`);
    return this.withFallback(async (ep) => {
      const { res, url } = await this.send(ep, `/v2/${this.name.path}/manifests/${reference}`, { accept: MANIFEST_ACCEPT }, false);
      if (res.statusCode !== 200) throw await this.failure(res, url, { manifest: reference });
      const cl = contentLength(res);
      if (cl !== undefined && cl > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new SystemError(`manifest for ${this.familiarRef(reference)} is too large: ${cl} bytes (the limit is ${MAX_MANIFEST_BYTES})`);
      }
      let body: Buffer;
      try {
        body = await readAll(res.body, MAX_MANIFEST_BYTES);
      } catch (err) {
        if (err instanceof SkiffError) {
          throw new SystemError(`manifest for ${this.familiarRef(reference)} is too large: more than ${MAX_MANIFEST_BYTES} bytes`);
        }
        throw new Unavailable(`Get "${url}": ${messageOf(err)}`, { cause: err });
      }
      let digest: string;
      if (byDigest) {
        if (digestOf(reference, body) !== reference) throw new SystemError(`manifest verification failed for digest ${reference}`);
        digest = reference;
      } else {
        // The registry's Docker-Content-Digest is trusted only as far as the
        // bytes agree with it: an image is identified by what was received.
        const announced = headerOf(res.headers, 'docker-content-digest')?.trim();
        digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        if (announced && DIGEST_RE.test(announced) && !announced.startsWith('sha256:') && digestOf(announced, body) === announced) {
          digest = announced;
        }
      }
      return { mediaType: mediaTypeOf(headerOf(res.headers, 'content-type'), body), digest, body };
    });
  }

  /** The repository's tags (`docker pull -a`), following `Link` pagination. */
  async listTags(): Promise<string[]> {
    return this.withFallback(async (ep) => {
      const tags: string[] = [];
      let path: string | undefined = `/v2/${this.name.path}/tags/list`;
      for (let page = 0; path && page < 100; page++) {
        const { res, url } = await this.send(ep, path, { accept: 'application/json' }, false);
        if (res.statusCode !== 200) throw await this.failure(res, url, { manifest: 'latest' });
        const body = await readAll(res.body, MAX_MANIFEST_BYTES);
        const doc = JSON.parse(body.toString('utf8')) as { tags?: unknown };
        if (Array.isArray(doc.tags)) for (const t of doc.tags) if (typeof t === 'string' && TAG_RE.test(t)) tags.push(t);
        const link = headerOf(res.headers, 'link');
        const next = link ? /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1] : undefined;
        path = next ? new URL(next, url).pathname + new URL(next, url).search : undefined;
      }
      return tags.sort();
    });
  }

  /**
   * Opens a blob for streaming from `offset` (a Range request when > 0).
   * The returned body is not verified: the caller hashes it (and keeps its
   * hash state across a resume). See BlobStream.offset for a registry that
   * ignores Range.
   */
  async openBlob(digest: string, offset: number): Promise<BlobStream> {
    if (!DIGEST_RE.test(digest)) throw new InvalidParameter(`invalid digest: ${JSON.stringify(digest)}`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidParameter(`invalid blob offset ${offset}`);
    return this.withFallback(async (ep) => {
      const headers: Record<string, string> = {};
      if (offset > 0) headers.range = `bytes=${offset}-`;
      const { res, url } = await this.send(ep, `/v2/${this.name.path}/blobs/${digest}`, headers, true);
      const label = `blob ${digest}`;
      if (res.statusCode === 200) {
        const total = contentLength(res);
        return { body: guard(res.body, this.readTimeoutMs, label, total), offset: 0, total };
      }
      if (res.statusCode === 206 && offset > 0) {
        const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/.exec(headerOf(res.headers, 'content-range')?.trim() ?? '');
        const start = m ? Number(m[1]) : NaN;
        if (start !== offset) {
          res.body.destroy();
          throw new Unavailable(`Get "${url}": the registry answered a range from ${m ? m[1] : 'an unknown offset'} instead of ${offset}`);
        }
        const total = m && m[3] !== '*' ? Number(m[3]) : undefined;
        const partial = contentLength(res) ?? (m ? Number(m[2]) - start + 1 : undefined);
        return { body: guard(res.body, this.readTimeoutMs, label, partial), offset, total };
      }
      if (res.statusCode === 416 && offset > 0) {
        // Asked for bytes past the end: fine when the caller already has the whole blob.
        const m = /\/(\d+)$/.exec(headerOf(res.headers, 'content-range')?.trim() ?? '');
        await res.body.dump();
        if (m && Number(m[1]) === offset) return { body: Readable.from([]), offset, total: offset };
        throw new InvalidParameter(`Get "${url}": offset ${offset} is past the end of ${label}`);
      }
      throw await this.failure(res, url, { blob: digest });
    });
  }

  /** Reads a small blob (an image config) into memory, verified against its digest, at most maxBytes. */
  async fetchBlob(digest: string, maxBytes: number): Promise<Buffer> {
    const { body, total } = await this.openBlob(digest, 0);
    if (total !== undefined && total > maxBytes) {
      body.destroy();
      throw new SystemError(`blob ${digest} is too large: ${total} bytes (the limit is ${maxBytes})`);
    }
    let data: Buffer;
    try {
      data = await readAll(body, maxBytes);
    } catch (err) {
      if (err instanceof SkiffError && err.kind === 'system') throw new SystemError(`blob ${digest} is too large: more than ${maxBytes} bytes`);
      throw err;
    }
    if (digestOf(digest, data) !== digest) throw new SystemError(`blob verification failed for digest ${digest}`);
    return data;
  }

  /**
   * One authorized request on the registry itself (never a mirror), for the
   * upload protocol (push): any method, an optional body, no redirects
   * followed. `target` is a path (`/v2/...`) or an absolute or relative URL
   * the registry returned (an upload's Location). `scope` is the token scope
   * the request needs (`repository:<path>:pull,push`, plus a mount source's
   * pull). A 401 is retried once with a new token when the body can be re-sent.
   */
  async call(method: string, target: string, opts: RegistryCall): Promise<RegistryAnswer> {
    const ep = this.endpoints[this.endpoints.length - 1] as Endpoint;
    await this.ready(ep);
    const url = new URL(target, `${ep.base as string}/`).href;
    const verb = method.charAt(0) + method.slice(1).toLowerCase();
    // The scope is the operation's (push,pull; a mount's source), whatever a challenge named: as dockerd.
    // Every body can be sent again (a Buffer, or a function that makes the stream anew): a 401 is always retried.
    const { res } = await this.authorized(ep, `${verb} "${url}"`, opts.scope, true, async (auth) => {
      try {
        const r = await request(url, {
          method: method as Dispatcher.HttpMethod,
          headers: { 'user-agent': this.opts.userAgent, ...(opts.headers ?? {}), ...auth },
          body: typeof opts.body === 'function' ? Readable.from(opts.body(), { objectMode: false }) : opts.body,
          dispatcher: this.dispatcherFor(new URL(url)),
          maxRedirections: 0,
          bodyTimeout: this.readTimeoutMs,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        return { res: r, retryable: true };
      } catch (err) {
        throw new Unavailable(`${verb} "${url}": ${describe(err)}`, { cause: err });
      }
    });
    return { status: res.statusCode, header: (name) => headerOf(res.headers, name), body: res.body, url };
  }

  /**
   * One request with the endpoint's authorization, and once more with a new
   * token after a 401 that named other challenges or met a token that was not
   * fresh. `send` makes one attempt with the authorization headers it is
   * given and says whether a 401 to it may be retried.
   */
  private async authorized<T extends { res: Dispatcher.ResponseData; retryable: boolean }>(
    ep: Endpoint,
    what: string,
    scope: string,
    operationScope: boolean,
    send: (auth: Record<string, string>) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const auth: Record<string, string> = {};
      let authz: Authorization | undefined;
      if (ep.challenges.length > 0) {
        const challenges = operationScope ? ep.challenges.map((c) => ({ ...c, params: { ...c.params, scope: '' } })) : ep.challenges;
        try {
          authz = await this.auth.authorize(challenges, scope);
        } catch (err) {
          throw rewrap(err, `${what}: `);
        }
        if (authz) auth.authorization = authz.header;
      }
      const sent = await send(auth);
      if (sent.res.statusCode === 401 && attempt === 0 && sent.retryable) {
        const wa = headerOf(sent.res.headers, 'www-authenticate');
        const challenges = wa ? parseChallenges(wa) : [];
        const changed = challenges.length > 0 && !sameChallenges(challenges, ep.challenges, scope);
        authz?.invalidate();
        if (changed || (authz && !authz.fresh)) {
          if (changed) ep.challenges = challenges;
          await sent.res.body.dump().catch(() => {});
          continue;
        }
      }
      return sent;
    }
  }

  /** Reads a failed answer into the error the registry gave (`unauthorized: ...`, `blob unknown: ...`). */
  async callError(answer: RegistryAnswer, what: string): Promise<SkiffError> {
    let text = '';
    try {
      text = await readLimited(answer.body);
    } catch {
      // the status alone has to do
    }
    const status = answer.status;
    if (status >= 500 || status === 429) return new Unavailable(`${what}: received unexpected HTTP status: ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd());
    const first = parseRegistryErrors(status, answer.header('content-type'), text, answer.header('www-authenticate'))[0] as { code: string; message: string };
    const detail = formatRegistryError(first);
    if (status === 401 || first.code === 'UNAUTHORIZED') return new Unauthorized(detail);
    if (status === 403 || first.code === 'DENIED') return new Forbidden(detail);
    if (status === 404) return new NotFound(detail);
    return status === 400 ? new InvalidParameter(detail) : new SystemError(`${what}: ${detail}`);
  }

  /** Closes the kept-alive connections and aborts requests still running. */
  async close(): Promise<void> {
    await Promise.all([this.agent.destroy(), this.insecureAgent?.destroy()]);
  }

  // --- internals ---

  private makeAgent(verify: boolean): Agent {
    return new Agent({
      connect: { timeout: this.opts.connectTimeoutMs ?? 15_000, rejectUnauthorized: verify },
      headersTimeout: this.opts.readTimeoutMs ?? 30_000,
      bodyTimeout: this.opts.readTimeoutMs ?? 30_000,
      keepAliveTimeout: 30_000,
      connections: 8,
    });
  }

  private dispatcherFor(url: URL): Dispatcher {
    if (url.protocol === 'https:' && this.endpoints.some((e) => e.insecureTls && e.host === url.host)) {
      this.insecureAgent ??= this.makeAgent(false);
      return this.insecureAgent;
    }
    return this.agent;
  }

  private familiarRef(reference: string): string {
    return `${familiarName(this.name)}${DIGEST_RE.test(reference) ? '@' : ':'}${reference}`;
  }

  /** Runs `fn` against the mirrors, then the registry itself. */
  private async withFallback<T>(fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    const eps = this.endpoints.filter((e) => !e.down);
    for (let i = 0; i < eps.length; i++) {
      const ep = eps[i] as Endpoint;
      try {
        return await fn(ep);
      } catch (err) {
        if (!ep.mirror || i === eps.length - 1) throw err;
        if (err instanceof Unavailable) ep.down = true;
      }
    }
    throw new SystemError('no registry endpoint'); // unreachable: the registry itself is always last
  }

  private ready(ep: Endpoint): Promise<void> {
    ep.ready ??= this.ping(ep).catch((err: unknown) => {
      ep.ready = undefined;
      if (ep.mirror && err instanceof Unavailable) ep.down = true;
      throw err;
    });
    return ep.ready;
  }

  /** GET /v2/: picks the scheme (insecure registries) and learns the auth challenge. */
  private async ping(ep: Endpoint): Promise<void> {
    let candidates: Array<{ base: string; insecureTls: boolean }>;
    if (ep.mirror) {
      candidates = [{ base: ep.base as string, insecureTls: ep.insecureTls }];
    } else {
      const insecure = await this.isInsecure(ep.host);
      if (!insecure) candidates = [{ base: `https://${ep.host}`, insecureTls: false }];
      else {
        const https = { base: `https://${ep.host}`, insecureTls: true };
        const http = { base: `http://${ep.host}`, insecureTls: false };
        candidates = schemeCache.get(ep.host) === 'http' ? [http, https] : [https, http];
      }
    }
    let lastErr: unknown;
    for (const c of candidates) {
      ep.base = c.base;
      ep.insecureTls = c.insecureTls;
      const url = `${c.base}/v2/`;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: 'GET',
          headers: { 'user-agent': this.opts.userAgent },
          dispatcher: this.dispatcherFor(new URL(url)),
          maxRedirections: 0,
        });
      } catch (err) {
        lastErr = err;
        continue;
      }
      const wa = headerOf(res.headers, 'www-authenticate');
      await res.body.dump().catch(() => {});
      ep.challenges = res.statusCode === 401 && wa ? parseChallenges(wa) : [];
      if (!ep.mirror && candidates.length > 1) schemeCache.set(ep.host, c.base.startsWith('https:') ? 'https' : 'http');
      return;
    }
    ep.base = undefined;
    throw new Unavailable(`Get "${candidates[candidates.length - 1]?.base}/v2/": ${describe(lastErr)}`, { cause: lastErr });
  }

  private async isInsecure(host: string): Promise<boolean> {
    if (isInsecureRegistry(host, this.opts.insecureRegistries)) return true;
    const name = hostnameOf(host.toLowerCase());
    if (isIP(name) !== 0 || HUB_HOSTS.has(name)) return false;
    try {
      const addrs = await lookup(name, { all: true });
      return isInsecureRegistry(host, this.opts.insecureRegistries, addrs.map((a) => a.address));
    } catch {
      return false; // cannot resolve: the request fails later with a useful error
    }
  }

  /** A GET on the endpoint, authorized, following redirects, with one retry after a 401 (not after a redirect). */
  private async send(ep: Endpoint, path: string, headers: Record<string, string>, stream: boolean): Promise<Sent> {
    await this.ready(ep);
    const url = `${ep.base as string}${path}`;
    return this.authorized(ep, `Get "${url}"`, this.scope, false, async (auth) => {
      const s = await this.follow(url, { 'user-agent': this.opts.userAgent, ...headers, ...auth }, stream);
      return { ...s, retryable: s.url === url };
    });
  }

  private async follow(url: string, headers: Record<string, string>, stream: boolean): Promise<Sent> {
    let cur = new URL(url);
    const origin = cur.origin;
    const h = { ...headers };
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(cur, {
          method: 'GET',
          headers: h,
          dispatcher: this.dispatcherFor(cur),
          maxRedirections: 0,
          // Blob bodies have their own stall guard, which does not count the
          // time a slow consumer (extraction to flash) takes.
          bodyTimeout: stream ? 0 : this.readTimeoutMs,
        });
      } catch (err) {
        throw new Unavailable(`Get "${cur.href}": ${describe(err)}`, { cause: err });
      }
      const location = headerOf(res.headers, 'location');
      if (REDIRECT_STATUS.has(res.statusCode) && location) {
        await res.body.dump().catch(() => {});
        const next = new URL(location, cur);
        if (next.origin !== origin) delete h.authorization;
        cur = next;
        continue;
      }
      return { res, url: cur.href };
    }
    throw new SystemError(`Get "${url}": stopped after ${MAX_REDIRECTS} redirects`);
  }

  /** Turns a failed response into the error Docker would report. */
  private async failure(res: Dispatcher.ResponseData, url: string, what: { manifest: string } | { blob: string }): Promise<SkiffError> {
    let text = '';
    try {
      text = await readLimited(res.body);
    } catch {
      // the status alone has to do
    }
    const status = res.statusCode;
    if (status >= 500 || status < 400) {
      return new Unavailable(`Get "${url}": received unexpected HTTP status: ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd());
    }
    const errors = parseRegistryErrors(status, headerOf(res.headers, 'content-type'), text, headerOf(res.headers, 'www-authenticate'));
    let first = errors[0] as { code: string; message: string };
    const name = familiarName(this.name);
    if (status === 404 && (first.code === 'UNKNOWN' || first.code === 'NOT_FOUND')) {
      first = 'manifest' in what ? { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' } : { code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' };
    }
    const detail = formatRegistryError(first);
    switch (first.code) {
      case 'DENIED':
        return new NotFound(`pull access denied for ${name}, repository does not exist or may require 'docker login': ${detail}`);
      case 'MANIFEST_UNKNOWN':
        return new NotFound(`manifest for ${'manifest' in what ? this.familiarRef(what.manifest) : name} not found: ${detail}`);
      case 'NAME_UNKNOWN':
        return new NotFound(`repository ${name} not found: ${detail}`);
      case 'BLOB_UNKNOWN':
        return new NotFound(`${'blob' in what ? `blob ${what.blob}` : 'blob'} not found: ${detail}`);
      case 'UNAUTHORIZED':
        return new Unauthorized(detail);
      case 'TOOMANYREQUESTS':
        return new Unavailable(detail);
      default:
        return status === 400 ? new InvalidParameter(detail) : new SystemError(detail);
    }
  }
}

/** Same schemes, realms, services and effective scopes (error parameters aside). */
function sameChallenges(a: Challenge[], b: Challenge[], defaultScope: string): boolean {
  const key = (cs: Challenge[]): string =>
    cs
      .map((c) => `${c.scheme} ${c.params.realm ?? ''} ${c.params.service ?? ''} ${c.scheme === 'bearer' ? c.params.scope || defaultScope : ''}`)
      .sort()
      .join('\n');
  return key(a) === key(b);
}

function rewrap(err: unknown, prefix: string): unknown {
  if (!(err instanceof SkiffError)) return new Unavailable(`${prefix}${messageOf(err)}`, { cause: err });
  const Ctor = err.constructor as new (message: string, options?: { cause?: unknown }) => SkiffError;
  return new Ctor(`${prefix}${err.message}`, { cause: err });
}

/** Node/undici error text, with the errno code when the message lacks it. */
function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[err.errors.length - 1]);
  const msg = messageOf(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : '';
  return cause && !msg.includes(cause) ? `${msg}: ${cause}` : msg;
}

function digestOf(like: string, data: Buffer): string {
  const algo = like.startsWith('sha512:') ? 'sha512' : 'sha256';
  return `${algo}:${createHash(algo).update(data).digest('hex')}`;
}

function mediaTypeOf(contentType: string | undefined, body: Buffer): string {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (ct !== '' && ct !== 'application/json' && ct !== 'text/plain' && ct !== 'application/octet-stream') return ct;
  try {
    const j = JSON.parse(body.toString('utf8')) as { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; layers?: unknown; fsLayers?: unknown };
    if (typeof j.mediaType === 'string' && j.mediaType !== '') return j.mediaType;
    if (j.schemaVersion === 1 || Array.isArray(j.fsLayers)) return MEDIA_TYPES.dockerSchema1;
    if (Array.isArray(j.manifests)) return MEDIA_TYPES.ociIndex;
    if (Array.isArray(j.layers)) return MEDIA_TYPES.ociManifest;
  } catch {
    // not JSON: the caller's parser will say so
  }
  return ct || 'application/octet-stream';
}

/** Reads a stream into memory; throws SystemError past `limit` bytes (and destroys the stream). */
async function readAll(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      body.destroy();
      throw new SystemError(`more than ${limit} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Wraps a response body: errors become Unavailable (`blob …: <cause>`), a body
 * shorter than `expected` is an error, and when the consumer waits for data
 * and none comes for `timeoutMs` the stream is destroyed. Time spent while the
 * consumer is not reading (backpressure) does not count.
 */
function guard(src: Readable, timeoutMs: number, label: string, expected: number | undefined): Readable {
  let timer: NodeJS.Timeout | undefined;
  let received = 0;
  let settled = false;
  const disarm = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  const fail = (err: Error): void => {
    settled = true;
    disarm();
    out.destroy(err);
  };
  /** The consumer wants data: let it flow and start the stall clock. */
  const arm = (): void => {
    src.resume();
    if (!timer && !settled) {
      timer = setTimeout(() => {
        timer = undefined;
        fail(new Unavailable(`${label}: no data received for ${timeoutMs / 1000} s (after ${received} bytes)`));
      }, timeoutMs);
    }
  };
  const out = new Readable({
    read: arm,
    destroy(err, cb) {
      settled = true;
      disarm();
      src.destroy();
      cb(err);
    },
  });
  src.on('data', (chunk: Buffer) => {
    received += chunk.length;
    disarm();
    if (out.push(chunk)) arm();
    else src.pause();
  });
  src.on('end', () => {
    if (settled) return;
    if (expected !== undefined && received !== expected) {
      fail(new Unavailable(`${label}: connection closed after ${received} of ${expected} bytes`));
      return;
    }
    settled = true;
    disarm();
    out.push(null);
  });
  src.on('error', (err) => {
    if (!settled) fail(new Unavailable(`${label}: ${describe(err)} (after ${received} bytes)`, { cause: err }));
  });
  src.on('close', () => {
    if (!settled) fail(new Unavailable(`${label}: connection closed after ${received} bytes`));
  });
  src.pause();
  return out;
}
