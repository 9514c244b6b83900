// Registry credentials: the X-Registry-Auth header a client sends with a pull,
// RFC 7235 challenges (WWW-Authenticate), the Registry v2 token flow
// (Bearer: GET <realm>?service=&scope= or, with an identity token, the
// OAuth2 refresh_token POST) and the parsing of the registry's error bodies.
//
// Facts followed (from Docker's public behaviour):
// - X-Registry-Auth is base64url JSON; `e30=` ({}) means anonymous. dockerd
//   ignores a header it cannot decode and pulls anonymously; so do we.
// - A token response carries `token` or `access_token` (the latter wins),
//   `expires_in` (at least 60 s) and optionally `issued_at`.
// - Basic credentials go to the token server only when both a username and a
//   password are set; `account=<username>` is added to the query then.
// - An identity token is a refresh token: POST form grant_type=refresh_token.
// - `registrytoken` is sent as is whenever the registry asks for Bearer.
import { Buffer } from 'node:buffer';
import type { Dispatcher } from 'undici';
import { request } from 'undici';
import { SystemError, Unauthorized, Unavailable, messageOf } from '../errors.js';

export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64("user:password"), as in ~/.docker/config.json. */
  auth?: string;
  identitytoken?: string;
  registrytoken?: string;
  serveraddress?: string;
}

const AUTH_FIELDS = ['username', 'password', 'auth', 'identitytoken', 'registrytoken', 'serveraddress'] as const;

/**
 * Decodes the X-Registry-Auth header. Accepts base64url and standard base64,
 * with or without padding. Returns undefined for an absent or empty header,
 * for `{}` (what the docker CLI sends when it has no credentials) and for an
 * object without any credential in it.
 *
 * Like dockerd (its image routes drop the decode error), a header that is not
 * base64 or not a JSON object never fails the request: it means "no
 * credentials" and the pull proceeds anonymously. Unknown fields and fields
 * that are not strings are ignored. When `auth` is set but username/password
 * are not, they are taken from it.
 */
export function decodeRegistryAuth(header: string | undefined): AuthConfig | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === '' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const out: AuthConfig = {};
  const src = json as Record<string, unknown>;
  for (const key of AUTH_FIELDS) {
    const v = src[key];
    if (typeof v === 'string' && v !== '') out[key] = v;
  }
  if (out.auth && out.username === undefined && out.password === undefined) {
    const pair = decodeBasicPair(out.auth);
    if (pair) {
      if (pair.username) out.username = pair.username;
      if (pair.password) out.password = pair.password;
    }
  }
  if (!out.username && !out.password && !out.identitytoken && !out.registrytoken) return undefined;
  return out;
}

function decodeBasicPair(auth: string): { username: string; password: string } | undefined {
  const plain = Buffer.from(auth.trim(), 'base64').toString('utf8');
  const i = plain.indexOf(':');
  if (i < 0) return undefined;
  return { username: plain.slice(0, i), password: plain.slice(i + 1) };
}

export interface Challenge {
  /** Lower-cased auth scheme: `basic`, `bearer`, ... */
  scheme: string;
  /** Parameters, names lower-cased, quoted strings unescaped. */
  params: Record<string, string>;
  /** A token68 credential (`Negotiate abc==`), when the challenge has one instead of parameters. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/**
 * Parses a WWW-Authenticate value (RFC 7235): several challenges separated by
 * commas, each `scheme [token68 | name=value, ...]` where a value is a token or
 * a quoted string with backslash escapes. Lenient: garbage characters are
 * skipped and an unquoted value runs to the next comma or space (realms are
 * often sent unquoted).
 */
export function parseChallenges(wwwAuthenticate: string): Challenge[] {
  const h = wwwAuthenticate;
  const n = h.length;
  const out: Challenge[] = [];
  let i = 0;
  let cur: Challenge | undefined;
  const skipWs = (): void => {
    while (i < n && (h[i] === ' ' || h[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TCHAR.test(h[i] as string)) i++;
    return h.slice(start, i);
  };
  const readValue = (): string => {
    if (h[i] !== '"') {
      const start = i;
      while (i < n && h[i] !== ',' && h[i] !== ' ' && h[i] !== '\t') i++;
      return h.slice(start, i);
    }
    i++;
    let v = '';
    while (i < n && h[i] !== '"') {
      if (h[i] === '\\' && i + 1 < n) i++;
      v += h[i];
      i++;
    }
    i++; // closing quote (or end)
    return v;
  };
  while (i < n) {
    skipWs();
    if (i >= n) break;
    if (h[i] === ',') {
      i++;
      continue;
    }
    const tok = readToken();
    if (tok === '') {
      i++; // not a token character: skip it
      continue;
    }
    skipWs();
    if (cur && h[i] === '=') {
      i++;
      skipWs();
      cur.params[tok.toLowerCase()] = readValue();
      continue;
    }
    cur = { scheme: tok.toLowerCase(), params: {} };
    out.push(cur);
    // A token68 right after the scheme: `Basic abc==` (and not `Bearer realm=...`).
    const m = TOKEN68.exec(h.slice(i));
    if (m) {
      let j = i + m[0].length;
      while (j < n && (h[j] === ' ' || h[j] === '\t')) j++;
      if (j >= n || h[j] === ',') {
        cur.token68 = m[0];
        i = j;
      }
    }
  }
  return out;
}

/** One error of a registry's error body (`{"errors":[{code,message,detail}]}`). */
export interface RegistryErrorEntry {
  /** The error code as sent (`MANIFEST_UNKNOWN`, `DENIED`, ...). */
  code: string;
  message: string;
}

/**
 * Reads what a failed registry (or token server) response says, the way the
 * distribution client does: a Bearer challenge with `error=invalid_token`
 * means UNAUTHORIZED and `error=insufficient_scope` means DENIED and comes
 * first; then the JSON body (`errors` list, or the older `details` string);
 * a body that is not JSON becomes one error coded after the status (401
 * UNAUTHORIZED, 403 DENIED, 429 TOOMANYREQUESTS, else UNKNOWN) with the body
 * text as message.
 */
export function parseRegistryErrors(status: number, contentType: string | undefined, body: string, wwwAuthenticate?: string): RegistryErrorEntry[] {
  const out: RegistryErrorEntry[] = [];
  if (wwwAuthenticate && status >= 400 && status < 500) {
    for (const c of parseChallenges(wwwAuthenticate)) {
      if (c.scheme !== 'bearer') continue;
      const kind = c.params.error;
      if (kind === 'invalid_token') {
        out.push({ code: 'UNAUTHORIZED', message: c.params.error_description || 'authentication required' });
        break;
      }
      if (kind === 'insufficient_scope') {
        out.push({ code: 'DENIED', message: c.params.error_description || 'requested access to the resource is denied' });
        break;
      }
    }
  }
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  let parsed = false;
  if (type === 'application/json' || type === 'application/vnd.api+json') {
    try {
      const json = JSON.parse(body) as unknown;
      if (typeof json === 'object' && json !== null) {
        const j = json as { details?: unknown; errors?: unknown };
        if (typeof j.details === 'string' && j.details !== '') {
          out.push({ code: codeForStatus(status), message: j.details });
          parsed = true;
        } else if (Array.isArray(j.errors) && j.errors.length > 0) {
          for (const e of j.errors as unknown[]) {
            if (typeof e !== 'object' || e === null) continue;
            const { code, message } = e as { code?: unknown; message?: unknown };
            out.push({
              code: typeof code === 'string' && code !== '' ? code.toUpperCase() : 'UNKNOWN',
              message: typeof message === 'string' ? message : '',
            });
          }
          parsed = true;
        }
      }
    } catch {
      // not JSON after all: treated as text below
    }
  }
  if (!parsed) out.push({ code: codeForStatus(status), message: body.trim() || defaultMessage(codeForStatus(status)) });
  return out;
}

function codeForStatus(status: number): string {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 404:
      return 'NOT_FOUND';
    case 429:
      return 'TOOMANYREQUESTS';
    default:
      return 'UNKNOWN';
  }
}

function defaultMessage(code: string): string {
  switch (code) {
    case 'UNAUTHORIZED':
      return 'authentication required';
    case 'DENIED':
      return 'requested access to the resource is denied';
    case 'TOOMANYREQUESTS':
      return 'too many requests';
    case 'NOT_FOUND':
      return 'not found';
    default:
      return 'unknown error';
  }
}

/** `MANIFEST_UNKNOWN: manifest unknown` → `manifest unknown: manifest unknown`, as Docker prints registry errors. */
export function formatRegistryError(e: RegistryErrorEntry): string {
  return `${e.code.toLowerCase().replace(/_/g, ' ')}: ${e.message}`;
}

/** Reads at most `limit` bytes of a body as text and discards the rest. */
export async function readLimited(body: AsyncIterable<Buffer | Uint8Array | string>, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size >= limit) continue; // keep draining so the connection can be reused
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    chunks.push(b.subarray(0, limit - size));
    size += Math.min(b.length, limit - size);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export interface AuthenticatorOptions {
  auth?: AuthConfig;
  userAgent: string;
  /** The dispatcher to reach a token realm with (the registry client's keep-alive agent). */
  dispatcherFor: (url: URL) => Dispatcher;
  /** Headers timeout for token requests. Default 30 s. */
  timeoutMs?: number;
  /** OAuth2 client id sent with the refresh_token grant. Default `docker` (as the docker daemon sends). */
  clientId?: string;
}

/** What to put in the Authorization header, and whether it was just obtained. */
export interface Authorization {
  header: string;
  /** False when a cached token was reused: a 401 then warrants one retry with a new token. */
  fresh: boolean;
  /** Drops this token from the cache (the registry refused it). */
  invalidate(): void;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Minimum token lifetime, seconds (the distribution client's rule). */
export const MIN_TOKEN_LIFETIME_S = 60;

/**
 * Answers a registry's challenges with credentials: Basic with the configured
 * username/password; Bearer with a token from the challenge's realm, cached
 * per (realm, service, scope) until it expires; concurrent requests for the
 * same token share one token request. One Authenticator per set of
 * credentials (the RegistryClient owns one).
 */
export class Authenticator {
  private readonly opts: AuthenticatorOptions;
  private readonly username: string | undefined;
  private readonly password: string | undefined;
  private readonly cache = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** How many token requests were sent (for tests and debug logs). */
  tokenRequests = 0;

  constructor(opts: AuthenticatorOptions) {
    this.opts = opts;
    const a = opts.auth;
    let username = a?.username;
    let password = a?.password;
    if (a?.auth && !username && !password) {
      const pair = decodeBasicPair(a.auth);
      username = pair?.username;
      password = pair?.password;
    }
    this.username = username || undefined;
    this.password = password || undefined;
  }

  /** True when a username and a password are configured. */
  get hasBasic(): boolean {
    return this.username !== undefined && this.password !== undefined;
  }

  /**
   * The Authorization for a request, given the challenges the registry
   * presented (from its /v2/ answer or a 401). Bearer is preferred over Basic
   * when both are offered. Returns undefined when no challenge can be
   * answered (an unknown scheme). `defaultScope` is used when the Bearer
   * challenge names no scope (the /v2/ challenge never does).
   * Throws Unauthorized (`no basic auth credentials`, or the token server's
   * refusal) and Unavailable (token server unreachable or failing).
   */
  async authorize(challenges: Challenge[], defaultScope: string): Promise<Authorization | undefined> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      if (this.opts.auth?.registrytoken) {
        return { header: `Bearer ${this.opts.auth.registrytoken}`, fresh: true, invalidate: () => {} };
      }
      return this.bearer(bearer, defaultScope);
    }
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic) {
      if (!this.hasBasic) throw new Unauthorized('no basic auth credentials');
      return { header: basicHeader(this.username as string, this.password as string), fresh: true, invalidate: () => {} };
    }
    return undefined;
  }

  private async bearer(ch: Challenge, defaultScope: string): Promise<Authorization> {
    const realm = ch.params.realm;
    if (!realm) throw new SystemError('no realm specified for token auth challenge');
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch (err) {
      throw new SystemError(`invalid token auth challenge realm: ${realm}`, { cause: err });
    }
    const service = ch.params.service ?? '';
    const scope = ch.params.scope || defaultScope;
    const key = `${realmUrl.href}\n${service}\n${scope}`;
    const cached = this.cache.get(key);
    const invalidate = (): void => {
      this.cache.delete(key);
    };
    if (cached && cached.expiresAt > Date.now()) return { header: `Bearer ${cached.token}`, fresh: false, invalidate };
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchToken(realmUrl, service, scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const t = await pending;
    this.cache.set(key, t);
    return { header: `Bearer ${t.token}`, fresh: true, invalidate };
  }

  private async fetchToken(realm: URL, service: string, scope: string): Promise<CachedToken> {
    this.tokenRequests++;
    const identity = this.opts.auth?.identitytoken;
    const url = new URL(realm.href);
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent, accept: 'application/json' };
    let method: 'GET' | 'POST' = 'GET';
    let body: string | undefined;
    if (identity) {
      method = 'POST';
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', identity);
      if (service) form.set('service', service);
      form.set('scope', scope);
      form.set('client_id', this.opts.clientId ?? 'docker');
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (service) url.searchParams.append('service', service);
      for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
      if (this.hasBasic) {
        url.searchParams.append('account', this.username as string);
        headers.authorization = basicHeader(this.username as string, this.password as string);
      }
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method,
        headers,
        body,
        dispatcher: this.opts.dispatcherFor(url),
        maxRedirections: 3,
        headersTimeout: this.opts.timeoutMs ?? 30_000,
        bodyTimeout: this.opts.timeoutMs ?? 30_000,
      });
    } catch (err) {
      throw new Unavailable(`${method === 'GET' ? 'Get' : 'Post'} "${realm.href}": ${messageOf(err)}`, { cause: err });
    }
    let text: string;
    try {
      text = await readLimited(res.body, 1024 * 1024);
    } catch (err) {
      throw new Unavailable(`reading token from ${realm.href}: ${messageOf(err)}`, { cause: err });
    }
    const status = res.statusCode;
    if (status < 200 || status >= 300) {
      const errors = parseRegistryErrors(status, header(res.headers, 'content-type'), text, header(res.headers, 'www-authenticate'));
      const first = errors[0] as RegistryErrorEntry;
      const msg = formatRegistryError(first);
      if (status === 401 || status === 403) throw new Unauthorized(msg);
      if (status >= 500 || status === 429) throw new Unavailable(msg);
      throw new SystemError(`token request to ${realm.href} failed: ${msg}`);
    }
    let json: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      json = JSON.parse(text) as typeof json;
    } catch (err) {
      throw new SystemError(`unable to decode token response: ${messageOf(err)}`, { cause: err });
    }
    const token =
      typeof json.access_token === 'string' && json.access_token !== ''
        ? json.access_token
        : typeof json.token === 'string'
          ? json.token
          : '';
    if (!token) throw new Unauthorized('authorization server did not include a token in the response');
    const lifetime = typeof json.expires_in === 'number' && json.expires_in > MIN_TOKEN_LIFETIME_S ? json.expires_in : MIN_TOKEN_LIFETIME_S;
    let issued = Date.now();
    if (typeof json.issued_at === 'string') {
      const t = Date.parse(json.issued_at);
      // A token server's clock may be off: never trust an issue time in the future.
      if (Number.isFinite(t) && t < issued) issued = t;
    }
    // Renew a little before the server-side expiry (a request may take a while to arrive).
    const margin = Math.min(10_000, lifetime * 100);
    return { token, expiresAt: issued + lifetime * 1000 - margin };
  }
}

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
