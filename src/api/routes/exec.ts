// docker exec over the API (moby api/server/router/container/exec.go):
// create, start (hijacked, plain 200 stream, or detached), inspect, resize.
import type { Writable } from 'node:stream';
import { InvalidParameter, messageOf } from '../../errors.js';
import type { ExecBackend } from '../backend.js';
import { jsonBody, type RequestContext } from '../context.js';
import { hijack } from '../hijack.js';
import { sendJSON, sendStatus } from '../respond.js';
import type { Router } from '../router.js';
import { writeFrames } from '../stdcopy.js';

const ID = '(?<id>[^/]+)';

/** `h` and `w` as moby parses them (strconv.Atoi): a 400 when missing or malformed. */
export function ttySize(q: URLSearchParams): [number, number] {
  const atoi = (key: string): number => {
    const v = q.get(key) ?? '';
    if (!/^[+-]?\d+$/.test(v)) throw new InvalidParameter(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
    return Number(v);
  };
  return [atoi('h'), atoi('w')];
}

/** Raw bytes with a TTY, stdcopy frames without (moby decides by the start body's Tty). */
function writer(out: Writable, tty: boolean): (stream: 'stdout' | 'stderr', data: Buffer) => Promise<void> {
  return async (stream, data) => {
    if (out.destroyed || !out.writable) return;
    if (tty) {
      if (!out.write(data)) {
        await new Promise<void>((r) => {
          out.once('drain', r);
          out.once('close', r);
        });
      }
    } else {
      await writeFrames(out, stream === 'stdout' ? 1 : 2, data);
    }
  };
}

async function startBody(ctx: RequestContext): Promise<{ Detach: boolean; Tty: boolean }> {
  const body = await jsonBody(ctx);
  if (body === undefined) throw new InvalidParameter('got EOF while reading request body');
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidParameter('json: cannot unmarshal into Go value of type types.ExecStartCheck');
  }
  const b = body as Record<string, unknown>;
  return { Detach: b.Detach === true, Tty: b.Tty === true };
}

export function execRoutes(router: Router, x: ExecBackend): void {
  router.post(`/containers/${ID}/exec`, async (ctx) => {
    const body = await jsonBody(ctx);
    sendJSON(ctx.res, 201, x.create(ctx.params.id as string, body));
  });
  router.post(`/exec/${ID}/start`, async (ctx) => {
    const id = ctx.params.id as string;
    const check = await startBody(ctx);
    x.check(id);
    if (check.Detach) {
      await x.start(id, undefined);
      sendStatus(ctx.res, 200);
      return;
    }
    const h = await hijack(ctx);
    const write = writer(h.output, check.Tty);
    try {
      await x.start(id, { write, input: h.input, closed: h.closed });
    } catch (err) {
      // After the hijack the only channel left is the stream itself (moby writes the error to stdout).
      await write('stdout', Buffer.from(`${messageOf(err)}\r\n`)).catch(() => undefined);
    }
    h.close();
  });
  router.get(`/exec/${ID}/json`, (ctx) => sendJSON(ctx.res, 200, x.inspect(ctx.params.id as string)));
  router.post(`/exec/${ID}/resize`, async (ctx) => {
    const [h, w] = ttySize(ctx.query);
    await x.resize(ctx.params.id as string, h, w);
    sendStatus(ctx.res, 200);
  });
}
