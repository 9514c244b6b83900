// An in-process Bearer token server (Docker's token auth spec, the parts a
// pull uses): GET /token?service=&scope=[&account=] with optional Basic
// credentials, and POST /token with an OAuth2 form (grant_type=refresh_token
// or password). Tokens are opaque random strings that the fault proxy's gate
// checks with check(). Every token request is logged.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenServerOptions {
  service?: string;
  /** Accepted username → password. */
  users?: Record<string, string>;
  /** Refuse tokens to anonymous requests (401). Default false: anonymous tokens, like Docker Hub. */
  requireLogin?: boolean;
  /** Accepted identity (refresh) tokens → username. */
  refreshTokens?: Record<string, string>;
  /** Whether `account` (undefined = anonymous) may pull `repo`. Default: everyone everything. */
  access?: (account: string | undefined, repo: string) => boolean;
  /** Seconds; default 300. */
  expiresIn?: number;
  /** Which field carries the token in GET answers. Default 'token'. */
  tokenField?: 'token' | 'access_token' | 'both';
}

export interface TokenRequestLog {
  method: string;
  service: string | null;
  scopes: string[];
  account: string | undefined;
  /** `basic` when a Basic Authorization header came, `refresh_token`/`password` for POSTs. */
  grant: string;
  authorization: string | undefined;
  status: number;
}

interface Issued {
  account: string | undefined;
  repos: Set<string>;
  expiresAt: number;
}

export type TokenCheck = 'ok' | 'invalid' | 'denied';

export interface TokenServer {
  url: string;
  /** The realm to put in challenges: `<url>/token`. */
  realm: string;
  service: string;
  requests: TokenRequestLog[];
  /** Validates a token for a repository (undefined: just valid, for /v2/). */
  check(token: string, repo?: string): TokenCheck;
  /** Issues a token directly (for `registrytoken`). */
  issue(account: string | undefined, repos: string[]): string;
  /** Forgets every token issued so far (a 401 `invalid_token` follows). */
  revokeAll(): void;
  /** The WWW-Authenticate value for a 401. */
  challenge(repo?: string, error?: 'invalid_token' | 'insufficient_scope'): string;
  stop(): Promise<void>;
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const service = opts.service ?? 'test';
  const tokens = new Map<string, Issued>();
  const requests: TokenRequestLog[] = [];
  const access = opts.access ?? (() => true);

  const issue = (account: string | undefined, repos: string[]): string => {
    const token = randomBytes(24).toString('hex');
    tokens.set(token, { account, repos: new Set(repos), expiresAt: Date.now() + (opts.expiresIn ?? 300) * 1000 });
    return token;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const reply = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (url.pathname !== '/token') return reply(404, { details: 'not found' });
    let params: URLSearchParams;
    let grant = 'anonymous';
    let account: string | undefined;
    let failed = false;
    const authorization = req.headers.authorization;
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      grant = params.get('grant_type') ?? '';
      if (grant === 'refresh_token') {
        account = opts.refreshTokens?.[params.get('refresh_token') ?? ''];
        failed = account === undefined;
      } else if (grant === 'password') {
        const u = params.get('username') ?? '';
        failed = opts.users?.[u] === undefined || opts.users[u] !== params.get('password');
        account = failed ? undefined : u;
      } else {
        failed = true;
      }
    } else {
      params = url.searchParams;
      if (authorization?.startsWith('Basic ')) {
        grant = 'basic';
        const plain = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
        const i = plain.indexOf(':');
        const u = plain.slice(0, i);
        failed = i < 0 || opts.users?.[u] === undefined || opts.users[u] !== plain.slice(i + 1);
        account = failed ? undefined : u;
      } else if (opts.requireLogin) {
        failed = true;
      }
    }
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const log: TokenRequestLog = { method: req.method ?? 'GET', service: params.get('service'), scopes, account: account ?? params.get('account') ?? undefined, grant, authorization, status: 200 };
    requests.push(log);
    if (failed) {
      log.status = 401;
      return reply(401, { details: 'incorrect username or password' });
    }
    const repos: string[] = [];
    for (const s of scopes) {
      const m = /^repository:(.+):([a-z,*]+)$/.exec(s);
      if (m && (m[2] as string).split(',').includes('pull') && access(account, m[1] as string)) repos.push(m[1] as string);
    }
    const token = issue(account, repos);
    const expires_in = opts.expiresIn ?? 300;
    if (req.method === 'POST') return reply(200, { access_token: token, expires_in, scope: scopes.join(' '), token_type: 'Bearer' });
    const field = opts.tokenField ?? 'token';
    const body: Record<string, unknown> = { expires_in, issued_at: new Date().toISOString() };
    if (field === 'token' || field === 'both') body.token = token;
    if (field === 'access_token' || field === 'both') body.access_token = token;
    return reply(200, body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const realm = `${url}/token`;
  return {
    url,
    realm,
    service,
    requests,
    issue,
    check(token, repo) {
      const t = tokens.get(token);
      if (!t || t.expiresAt < Date.now()) return 'invalid';
      if (repo === undefined) return 'ok';
      return t.repos.has(repo) ? 'ok' : 'denied';
    },
    revokeAll() {
      tokens.clear();
    },
    challenge(repo, error) {
      let v = `Bearer realm="${realm}",service="${service}"`;
      if (repo !== undefined) v += `,scope="repository:${repo}:pull"`;
      if (error) v += `,error="${error}"`;
      return v;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
