// The CLI's side of the Engine API: plain HTTP over the daemon's socket, as
// the docker CLI does it, so every client command is a thin request + print.
import { request, type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { API_VERSION } from '../version.js';

export const DEFAULT_CLIENT_HOST = 'unix:///var/run/skiff.sock';

/** The daemon could not be reached at all. */
export class ConnectError extends Error {
  constructor(readonly host: string, cause: Error) {
    super(`Cannot connect to the skiff daemon at ${host}. Is the skiff daemon running?`, { cause });
    this.name = 'ConnectError';
  }
}

/** The daemon answered with an error status. */
export class DaemonError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

export interface ClientResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export class ApiClient {
  private readonly target: { socketPath: string } | { host: string; port: number };

  constructor(readonly host: string) {
    if (host.startsWith('unix://')) this.target = { socketPath: host.slice('unix://'.length) };
    else {
      const m = /^tcp:\/\/\[?([^\]]*)\]?:(\d+)$/.exec(host);
      if (!m) throw new Error(`invalid host "${host}": use unix:///path or tcp://address:port`);
      this.target = { host: m[1] || '127.0.0.1', port: Number(m[2]) };
    }
  }

  /** A streaming call: resolves with the response once headers arrive; errors become DaemonError. */
  stream(method: string, path: string, headers: Record<string, string> = {}, body?: unknown, upload?: Readable): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) headers = { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(payload.length) };
    return new Promise((resolve, reject) => {
      const req = request(
        { ...this.target, method, path: `/v${API_VERSION}${path}`, headers: { Host: 'skiff', 'User-Agent': 'skiff-cli', ...headers } },
        (res) => {
          if ((res.statusCode ?? 0) < 400) return resolve(res);
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => reject(new DaemonError(res.statusCode ?? 0, errorText({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))));
        },
      );
      req.on('error', (err) => reject(new ConnectError(this.host, err)));
      if (upload) {
        upload.on('error', (err) => req.destroy(err));
        upload.pipe(req);
      } else req.end(payload);
    });
  }

  request(method: string, path: string, body?: unknown): Promise<ClientResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          ...this.target,
          method,
          path: `/v${API_VERSION}${path}`,
          headers: {
            Host: 'skiff',
            'User-Agent': 'skiff-cli',
            ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', (err) => reject(new ConnectError(this.host, err)));
      req.end(payload);
    });
  }

  /** A JSON call; error statuses become DaemonError with the daemon's message. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    if (res.status >= 400) throw new DaemonError(res.status, errorText(res));
    // 204 and 304 have no body.
    if (res.body.length === 0) return undefined as T;
    return JSON.parse(res.body.toString('utf8')) as T;
  }
}

function errorText(res: ClientResponse): string {
  const text = res.body.toString('utf8');
  if (res.headers['content-type'] === 'application/json') {
    try {
      const m = (JSON.parse(text) as { message?: unknown }).message;
      if (typeof m === 'string') return m;
    } catch {
      // fall through to the raw text
    }
  }
  return text.trim() || `request returned status ${res.status}`;
}
