// What a route handler sees of one request: parsed path, query, a capped
// body reader and the response. Handlers translate; they hold no logic.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { InvalidParameter } from '../errors.js';

export interface UpgradeInfo {
  socket: Duplex;
  /** Bytes the HTTP parser read past the headers (start of body / stdin). */
  head: Buffer;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  /** The path without the /vX.Y prefix. */
  path: string;
  /** The API version the client asked for (1.41 when unversioned). */
  apiVersion: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Set when the client sent `Connection: Upgrade`; the route may hijack it. */
  upgrade: UpgradeInfo | undefined;
  /** Bytes of a body, up to the server's cap. */
  body(): Promise<Buffer>;
}

export const MAX_JSON_BODY = 4 * 1024 * 1024;

/** Reads a request body through the Content-Length / chunked framing, refusing bodies over `limit`. */
export function readBody(req: IncomingMessage, upgrade: UpgradeInfo | undefined, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    if (!/^\d+$/.test(declared)) return Promise.reject(new InvalidParameter('invalid Content-Length header'));
    if (Number(declared) > limit) return Promise.reject(new InvalidParameter(`request body too large (limit ${limit} bytes)`));
  }
  if (upgrade) return readUpgradeBody(upgrade, Number(declared ?? 0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new InvalidParameter(`request body too large (limit ${limit} bytes)`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!failed) reject(new InvalidParameter(`reading request body: ${err.message}`));
      failed = true;
    });
  });
}

/**
 * After an Upgrade the HTTP parser is gone: the body (dockerode sends JSON
 * there) is the first Content-Length bytes of `head` + socket, and the rest is
 * stdin. What is left over is put back into `upgrade.head` for the hijacker.
 */
function readUpgradeBody(upgrade: UpgradeInfo, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = upgrade.head;
    const finish = () => {
      upgrade.socket.off('data', onData);
      upgrade.socket.off('end', onEnd);
      upgrade.socket.pause();
      upgrade.head = buf.subarray(length);
      resolve(buf.subarray(0, length));
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= length) finish();
    };
    const onEnd = () => {
      upgrade.socket.off('data', onData);
      reject(new InvalidParameter('unexpected end of request body'));
    };
    if (buf.length >= length) return finish();
    upgrade.socket.on('data', onData);
    upgrade.socket.on('end', onEnd);
    upgrade.socket.resume();
  });
}

/** Parses a JSON body; moby refuses a body that is not declared as JSON. */
export async function jsonBody(ctx: RequestContext): Promise<unknown> {
  const buf = await ctx.body();
  if (buf.length === 0) return undefined;
  const ct = ctx.req.headers['content-type'];
  if (ct !== undefined && !/^application\/json\s*(;|$)/i.test(ct)) {
    throw new InvalidParameter(`unsupported Content-Type header (${ct}): must be 'application/json'`);
  }
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new InvalidParameter(`invalid JSON: ${(err as Error).message}`);
  }
}

/** moby's BoolValue: only "", 0, no, false, none (any case) are false. */
export function boolValue(q: URLSearchParams, key: string): boolean {
  const v = q.get(key);
  if (v === null) return false;
  return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
}

/** An optional integer query parameter; a malformed one is a 400, like moby's. */
export function intValue(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new InvalidParameter(`invalid value for ${key}: ${JSON.stringify(v)}: not an integer`);
  return Number(v);
}

export type Filters = Map<string, string[]>;

/** `filters` in either the map form {"k":{"v":true}} or the legacy array form {"k":["v"]}. */
export function parseFilters(q: URLSearchParams): Filters {
  const raw = q.get('filters');
  const out: Filters = new Map();
  if (raw === null || raw === '') return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new InvalidParameter(`invalid filter: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidParameter('invalid filter: expected a JSON object');
  }
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
      out.set(k, v as string[]);
    } else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      out.set(
        k,
        Object.entries(v as Record<string, unknown>)
          .filter(([, on]) => on === true)
          .map(([name]) => name),
      );
    } else {
      throw new InvalidParameter(`invalid filter: value of '${k}' must be a list or a map`);
    }
  }
  return out;
}
