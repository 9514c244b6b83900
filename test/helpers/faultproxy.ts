// An in-process HTTP proxy in front of a registry that injects faults into
// chosen responses: cut the connection (RST) after N body bytes, flip the
// byte at body offset N, answer a status K times, truncate (close cleanly
// after N bytes although Content-Length promised more), stall (headers and N
// bytes, then nothing), redirect to a second listener (another origin),
// drop the Range header (the upstream then answers 200), cut a request body
// (an upload) after N bytes, or hold a request back for a while. With a
// token server it also acts as a Bearer-protected registry: 401 + challenge
// unless the request carries a token the server issued for the repository.
//
// Body offsets count the bytes of this response's body as sent by the proxy.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TokenServer } from './tokenserver.js';

export type Fault =
  | { kind: 'cut'; after: number }
  | { kind: 'flip'; at: number }
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'truncate'; after: number }
  | { kind: 'stall'; after: number }
  | { kind: 'redirect'; status?: 301 | 302 | 303 | 307 | 308; sameOrigin?: boolean }
  | { kind: 'ignoreRange' }
  /** Forward `after` bytes of the request body (an upload), then reset the client's connection (0: at once, nothing forwarded). */
  | { kind: 'cutRequest'; after: number }
  /** Pass the request on only after `ms`: a slow registry. */
  | { kind: 'delay'; ms: number };

export interface FaultRule {
  /** Which requests: a RegExp on the path (query included), or a predicate. Default: every request. */
  match?: RegExp | ((req: IncomingMessage) => boolean);
  method?: string;
  fault: Fault;
  /** How many matching requests get the fault (default 1; Infinity for all). */
  times?: number;
}

export interface ProxyLogEntry {
  method: string;
  /** Path and query as received. */
  url: string;
  /** Which listener got it: 'main' or 'other' (the redirect target). */
  listener: 'main' | 'other';
  headers: IncomingMessage['headers'];
  status: number;
  fault: Fault['kind'] | 'auth' | undefined;
  /** Request body bytes received from the client so far. */
  requestBytes: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`: use as the registry domain. */
  host: string;
  /** The second listener's origin, target of `redirect` faults. */
  otherUrl: string;
  log: ProxyLogEntry[];
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Protect the repository paths with Bearer tokens from this server. */
  tokenServer?: TokenServer;
}

const REDIRECT_PREFIX = '/_redirected';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

interface ActiveRule extends FaultRule {
  left: number;
}

export async function startFaultProxy(target: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: ActiveRule[] = [];
  const log: ProxyLogEntry[] = [];
  const sockets = new Set<Socket>();
  let otherOrigin = '';
  let selfOrigin = '';

  const pickFault = (req: IncomingMessage): Fault | undefined => {
    for (const r of rules) {
      if (r.left <= 0) continue;
      if (r.method && r.method !== req.method) continue;
      const m = r.match;
      const ok = m === undefined ? true : m instanceof RegExp ? m.test(req.url ?? '') : m(req);
      if (!ok) continue;
      r.left--;
      return r.fault;
    }
    return undefined;
  };

  const gate = (req: IncomingMessage, path: string): { status: number; challenge: string; error?: string } | undefined => {
    const ts = opts.tokenServer;
    if (!ts) return undefined;
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const m = /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(path);
    const repo = m ? m[1] : undefined;
    if (token === undefined) return { status: 401, challenge: ts.challenge(repo) };
    const verdict = ts.check(token, repo);
    if (verdict === 'ok') return undefined;
    if (verdict === 'invalid') return { status: 401, challenge: ts.challenge(repo, 'invalid_token') };
    return { status: 401, challenge: ts.challenge(repo, 'insufficient_scope'), error: 'insufficient_scope' };
  };

  const handler = (listener: 'main' | 'other') => (req: IncomingMessage, res: ServerResponse) => {
    let path = req.url ?? '/';
    const entry: ProxyLogEntry = { method: req.method ?? 'GET', url: path, listener, headers: { ...req.headers }, status: 0, fault: undefined, requestBytes: 0 };
    req.on('data', (c: Buffer) => (entry.requestBytes += c.length));
    log.push(entry);
    const redirected = path.startsWith(`${REDIRECT_PREFIX}/`);
    if (redirected) path = path.slice(REDIRECT_PREFIX.length);
    else {
      const denied = gate(req, path);
      if (denied) {
        entry.status = denied.status;
        entry.fault = 'auth';
        const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }] });
        res.writeHead(denied.status, { 'content-type': 'application/json', 'www-authenticate': denied.challenge, 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
    }
    const fault = pickFault(req);
    entry.fault = fault?.kind;
    if (fault?.kind === 'status') {
      entry.status = fault.status;
      const body = fault.body ?? `injected fault: ${fault.status}\n`;
      res.writeHead(fault.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...(fault.headers ?? {}) });
      res.end(body);
      return;
    }
    if (fault?.kind === 'redirect') {
      const status = fault.status ?? 307;
      entry.status = status;
      const base = fault.sameOrigin ? '' : otherOrigin;
      res.writeHead(status, { location: `${base}${REDIRECT_PREFIX}${path}`, 'content-length': 0 });
      res.end();
      return;
    }
    const forward = (): void => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v === undefined || HOP_BY_HOP.has(k) || k === 'host') continue;
        if (k === 'authorization' && opts.tokenServer) continue; // the registry behind is open
        if (k === 'range' && fault?.kind === 'ignoreRange') continue;
        headers[k] = v;
      }
      headers.host = upstream.host;
      const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers }, (ures) => {
        entry.status = ures.statusCode ?? 0;
        const outHeaders: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(ures.headers)) {
          if (v === undefined || HOP_BY_HOP.has(k)) continue;
          // Like a reverse proxy: the registry's absolute Locations (uploads) point back through the proxy.
          outHeaders[k] = k === 'location' && typeof v === 'string' && v.startsWith(upstream.origin) ? `${selfOrigin}${v.slice(upstream.origin.length)}` : v;
        }
        res.writeHead(ures.statusCode ?? 502, outHeaders);
        let sent = 0;
        const limit = fault && 'after' in fault ? fault.after : Infinity;
        let stopped = false;
        ures.on('data', (chunk: Buffer) => {
          if (stopped) return;
          let data = chunk;
          if (fault?.kind === 'flip' && fault.at >= sent && fault.at < sent + data.length) {
            data = Buffer.from(data);
            data[fault.at - sent] = (data[fault.at - sent] as number) ^ 0xff;
          }
          if (sent + data.length < limit) {
            sent += data.length;
            res.write(data);
            return;
          }
          // The fault point is in this chunk.
          stopped = true;
          const head = data.subarray(0, limit - sent);
          sent += head.length;
          ures.destroy();
          const socket = res.socket;
          const after = (): void => {
            if (!fault || !socket) return;
            if (fault.kind === 'cut') setTimeout(() => socket.resetAndDestroy(), 30);
            else if (fault.kind === 'truncate') socket.end();
            // stall: leave the connection open and silent until the client gives up (or stop()).
          };
          if (head.length > 0) res.write(head, after);
          else after();
        });
        ures.on('end', () => {
          if (!stopped) res.end();
        });
        ures.on('error', () => res.destroy());
      });
      up.on('error', (err) => {
        entry.status = 502;
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`proxy: ${err.message}\n`);
        } else res.destroy();
      });
      if (fault?.kind === 'cutRequest' && fault.after === 0) {
        // The connection dies as the request starts: the registry gets no byte of its body.
        up.destroy();
        req.socket.resetAndDestroy();
        return;
      }
      if (fault?.kind === 'cutRequest') {
        let sent = 0;
        req.on('data', (chunk: Buffer) => {
          if (sent >= fault.after) return;
          const head = chunk.subarray(0, fault.after - sent);
          sent += head.length;
          up.write(head);
          if (sent >= fault.after) {
            // The registry sees its upload end early; the client a reset connection.
            setTimeout(() => {
              up.destroy();
              req.socket.resetAndDestroy();
            }, 30);
          }
        });
        req.on('end', () => {
          if (sent < fault.after) up.end();
        });
        return;
      }
      req.pipe(up);
    };
    if (fault?.kind === 'delay') {
      // Held back, then passed on unchanged (a body waits in the paused request).
      req.pause();
      setTimeout(forward, fault.ms);
    } else forward();
  };

  const listen = async (listener: 'main' | 'other'): Promise<Server> => {
    const s = createServer(handler(listener));
    s.on('connection', (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return s;
  };
  const main = await listen('main');
  const other = await listen('other');
  const port = (main.address() as AddressInfo).port;
  otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  selfOrigin = `http://127.0.0.1:${port}`;

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    otherUrl: otherOrigin,
    log,
    addFault(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    clearFaults() {
      rules.length = 0;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([main, other].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
