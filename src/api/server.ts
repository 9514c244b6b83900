// The HTTP side of the Engine API: version prefix and negotiation, the
// headers every response carries, error mapping, body caps, Upgrade handling
// and resilience against malformed clients. Routes live in routes/.
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { InvalidParameter, NotFound, messageOf } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { API_VERSION, MIN_API_VERSION, VERSION } from '../version.js';
import { MAX_JSON_BODY, readBody, type RequestContext, type UpgradeInfo } from './context.js';
import { errorBody, sendError, sendJSON } from './respond.js';
import type { Router } from './router.js';

export interface ApiServerOptions {
  /** The routes, or their promise while the daemon is still starting (requests wait for it). */
  router: Router | Promise<Router>;
  logger: Logger;
  experimental: boolean;
}

/** Large enough for X-Registry-Auth carrying identity tokens. */
const MAX_HEADER_SIZE = 64 * 1024;

export function commonHeaders(experimental: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'Api-Version': API_VERSION,
    Ostype: 'linux',
    Server: `skiff/${VERSION} (linux)`,
  };
  if (experimental) h['Docker-Experimental'] = 'true';
  return h;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface ApiServer {
  /** A new HTTP server wired to the shared routes; one per listening socket. */
  newServer(): Server;
  /** Stops accepting connections on every server; idle keep-alive connections close. */
  stopAccepting(): void;
  /** Requests (and hijacked streams) in flight, for a graceful stop. */
  active(): number;
  /** Ends every remaining connection, streaming or hijacked. */
  closeAll(): void;
}

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const { router, logger } = opts;
  const headers = commonHeaders(opts.experimental);
  const sockets = new Set<Duplex>();
  let inflight = 0;

  const servers: Server[] = [];

  function newServer(): Server {
    // Host is optional for Docker clients (moby does not require it).
    const server = createServer({ maxHeaderSize: MAX_HEADER_SIZE, requireHostHeader: false });
    // Uploads (image load) and streams (logs -f, events, wait) can last hours.
    server.requestTimeout = 0;
    server.timeout = 0;
    server.on('connection', (sock: Duplex) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      void dispatch(req, res, undefined);
    });
    server.on('upgrade', onUpgrade);
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      sendJSON(res, 417, { message: `unsupported Expect header: ${req.headers.expect ?? ''}` });
    });
    server.on('clientError', onClientError);
    servers.push(server);
    return server;
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (req.headers['transfer-encoding'] !== undefined) {
      // After an Upgrade the body is framed by Content-Length only; anything else would leak into stdin.
      const body = errorBody('chunked request bodies are not supported on upgraded connections');
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    // A ServerResponse on the raw socket lets every route answer an Upgrade
    // request with plain HTTP (errors, 404) unless it decides to hijack.
    const res = new ServerResponse(req);
    res.assignSocket(socket as unknown as import('node:net').Socket);
    res.shouldKeepAlive = false;
    res.on('finish', () => {
      res.detachSocket(socket as unknown as import('node:net').Socket);
      socket.end();
    });
    void dispatch(req, res, { socket, head });
  }

  function onClientError(err: Error & { code?: string }, socket: Duplex): void {
    // Malformed requests must get Docker's JSON error shape, never crash us.
    // A response already on this connection (pipelining) cannot be followed by a clean 400.
    const inProgress = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inProgress) {
      socket.destroy();
      return;
    }
    const message =
      err.code === 'HPE_HEADER_OVERFLOW' ? 'request header too large' : `malformed HTTP request: ${err.message}`;
    const body = errorBody(message);
    const head = [
      'HTTP/1.1 400 Bad Request',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ].join('\r\n');
    socket.end(`${head}\r\n\r\n${body}`);
    logger.debug('rejected malformed request', { error: err.code ?? err.message });
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse, upgrade: UpgradeInfo | undefined): Promise<void> {
    inflight++;
    const started = Date.now();
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    let status = 0;
    try {
      const ctx = makeContext(req, res, upgrade);
      logger.debug('request', { method: ctx.method, path: req.url ?? '' });
      const match = (router instanceof Promise ? await router : router).match(ctx.method, ctx.path);
      if (!match) throw new NotFound('page not found');
      ctx.params = match.params;
      await match.handler(ctx);
      status = res.statusCode;
    } catch (err) {
      status = sendError(res, err);
      if (status >= 500) logger.error('handler failed', { method: req.method, path: req.url ?? '', error: messageOf(err) });
    } finally {
      inflight--;
      if (status >= 400 || logger.enabled('debug')) {
        logger.debug('response', { method: req.method, path: req.url ?? '', status, ms: Date.now() - started });
      }
    }
  }

  function makeContext(req: IncomingMessage, res: ServerResponse, upgrade: UpgradeInfo | undefined): RequestContext {
    const rawUrl = req.url ?? '/';
    let url: URL;
    try {
      url = new URL(rawUrl, 'http://skiff');
    } catch {
      throw new InvalidParameter(`invalid request URL: ${rawUrl}`);
    }
    let path = url.pathname;
    let apiVersion = API_VERSION;
    const m = /^\/v([0-9.]+)(\/.*)$/.exec(path);
    if (m) {
      apiVersion = m[1] as string;
      path = m[2] as string;
      if (!/^\d+(\.\d+)*$/.test(apiVersion)) throw new InvalidParameter(`invalid API version: ${apiVersion}`);
      if (compareVersions(apiVersion, API_VERSION) > 0) {
        throw new InvalidParameter(`client version ${apiVersion} is too new. Maximum supported API version is ${API_VERSION}`);
      }
      if (compareVersions(apiVersion, MIN_API_VERSION) < 0) {
        throw new InvalidParameter(
          `client version ${apiVersion} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
        );
      }
    }
    const method = (req.method ?? 'GET').toUpperCase();
    let bodyPromise: Promise<Buffer> | undefined;
    return {
      req,
      res,
      method,
      path,
      apiVersion,
      params: {},
      query: url.searchParams,
      upgrade,
      body: () => (bodyPromise ??= readBody(req, upgrade, MAX_JSON_BODY)),
    };
  }

  return {
    newServer,
    stopAccepting: () => {
      for (const srv of servers) {
        srv.close();
        srv.closeIdleConnections();
      }
    },
    active: () => inflight,
    closeAll: () => {
      for (const s of sockets) s.destroy();
    },
  };
}
