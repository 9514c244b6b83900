import { InvalidParameter } from '../../errors.js';
import type { ContainersBackend } from '../backend.js';
import { boolValue, intValue, jsonBody, parseFilters, type RequestContext } from '../context.js';
import { hijack } from '../hijack.js';
import { sendJSON, sendStatus } from '../respond.js';
import type { Router } from '../router.js';
import { writeFrames } from '../stdcopy.js';
import { ttySize } from './exec.js';
import type { Writable } from 'node:stream';

const ID = '(?<id>[^/]+)';

/** Output in the container's framing: raw with a TTY, stdcopy frames without. */
function writer(out: Writable, tty: boolean): (stream: 'stdout' | 'stderr', data: Buffer) => Promise<void> {
  return async (stream, data) => {
    if (out.destroyed || !out.writable) return;
    if (tty) {
      if (!out.write(data)) await new Promise<void>((r) => { out.once('drain', r); out.once('close', r); });
    } else {
      await writeFrames(out, stream === 'stdout' ? 1 : 2, data);
    }
  };
}

function abortOnClose(ctx: RequestContext): AbortController {
  const ac = new AbortController();
  ctx.res.on('close', () => ac.abort());
  ctx.req.socket.on('close', () => ac.abort());
  return ac;
}

export function containerRoutes(router: Router, c: ContainersBackend): void {
  router.post('/containers/create', async (ctx) => {
    const name = ctx.query.get('name') ?? undefined;
    sendJSON(ctx.res, 201, await c.create(name === '' ? undefined : name, await jsonBody(ctx)));
  });
  router.post('/containers/prune', async (ctx) => sendJSON(ctx.res, 200, await c.prune(parseFilters(ctx.query))));
  router.get('/containers/json', (ctx) => {
    sendJSON(ctx.res, 200, c.list({ all: boolValue(ctx.query, 'all'), limit: intValue(ctx.query, 'limit'), filters: parseFilters(ctx.query), size: boolValue(ctx.query, 'size') }));
  });
  router.get(`/containers/${ID}/json`, (ctx) => sendJSON(ctx.res, 200, c.inspect(ctx.params.id as string)));
  router.post(`/containers/${ID}/start`, async (ctx) => {
    await c.start(ctx.params.id as string);
    sendStatus(ctx.res, 204);
  });
  router.post(`/containers/${ID}/pause`, async (ctx) => {
    await c.pause(ctx.params.id as string);
    sendStatus(ctx.res, 204);
  });
  router.post(`/containers/${ID}/unpause`, async (ctx) => {
    await c.unpause(ctx.params.id as string);
    sendStatus(ctx.res, 204);
  });
  router.post(`/containers/${ID}/rename`, async (ctx) => {
    const name = ctx.query.get('name');
    if (!name) throw new InvalidParameter('name is required');
    await c.rename(ctx.params.id as string, name);
    sendStatus(ctx.res, 204);
  });
  router.post(`/containers/${ID}/update`, async (ctx) => sendJSON(ctx.res, 200, await c.update(ctx.params.id as string, await jsonBody(ctx))));
  router.get(`/containers/${ID}/stats`, async (ctx) => {
    const q = ctx.query;
    const stream = q.get('stream') === null ? true : boolValue(q, 'stream');
    const oneShot = boolValue(q, 'one-shot');
    const ac = abortOnClose(ctx);
    const samples = c.stats(ctx.params.id as string, stream && !oneShot, ac.signal);
    const first = await samples.next();
    ctx.res.writeHead(200, { 'Content-Type': 'application/json' });
    if (!first.done) ctx.res.write(JSON.stringify(first.value) + '\n');
    for await (const s of samples) {
      if (ctx.res.destroyed) break;
      ctx.res.write(JSON.stringify(s) + '\n');
    }
    ctx.res.end();
  });
  router.get(`/containers/${ID}/top`, async (ctx) => sendJSON(ctx.res, 200, await c.top(ctx.params.id as string)));
  router.post(`/containers/${ID}/stop`, async (ctx) => {
    await c.stop(ctx.params.id as string, intValue(ctx.query, 't'));
    sendStatus(ctx.res, 204);
  });
  router.post(`/containers/${ID}/restart`, async (ctx) => {
    await c.restart(ctx.params.id as string, intValue(ctx.query, 't'));
    sendStatus(ctx.res, 204);
  });
  router.post(`/containers/${ID}/kill`, async (ctx) => {
    await c.kill(ctx.params.id as string, ctx.query.get('signal') || undefined);
    sendStatus(ctx.res, 204);
  });
  router.post(`/containers/${ID}/resize`, async (ctx) => {
    const [h, w] = ttySize(ctx.query);
    await c.resize(ctx.params.id as string, h, w);
    sendStatus(ctx.res, 200);
  });
  router.post(`/containers/${ID}/wait`, async (ctx) => {
    const cond = (ctx.query.get('condition') || 'not-running') as 'not-running' | 'next-exit' | 'removed';
    if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw new InvalidParameter(`invalid condition: "${cond}"`);
    const ac = abortOnClose(ctx);
    const result = c.wait(ctx.params.id as string, cond, ac.signal);
    // The docker CLI starts the container only after these headers arrive.
    ctx.res.writeHead(200, { 'Content-Type': 'application/json' });
    ctx.res.flushHeaders();
    const r = await result;
    ctx.res.end(JSON.stringify(r) + '\n');
  });
  router.delete(`/containers/${ID}`, async (ctx) => {
    await c.remove(ctx.params.id as string, boolValue(ctx.query, 'force'), boolValue(ctx.query, 'v'));
    sendStatus(ctx.res, 204);
  });
  router.get(`/containers/${ID}/logs`, async (ctx) => {
    const q = ctx.query;
    const stdout = boolValue(q, 'stdout');
    const stderr = boolValue(q, 'stderr');
    if (!stdout && !stderr) throw new InvalidParameter('Bad parameters: you must choose at least one stream');
    const tailRaw = q.get('tail') ?? 'all';
    const tail = tailRaw === 'all' || tailRaw === '' ? 'all' : /^\d+$/.test(tailRaw) ? Number(tailRaw) : 'all';
    const id = ctx.params.id as string;
    const tty = c.isTty(id);
    const ac = abortOnClose(ctx);
    const entries = c.logs(id, {
      follow: boolValue(q, 'follow'),
      stdout,
      stderr,
      since: Number(q.get('since') ?? 0) || 0,
      until: Number(q.get('until') ?? 0) || 0,
      timestamps: boolValue(q, 'timestamps'),
      tail,
    }, ac.signal);
    ctx.res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' });
    ctx.res.flushHeaders();
    const write = writer(ctx.res, tty);
    const ts = boolValue(q, 'timestamps');
    for await (const e of entries) {
      await write(e.stream, Buffer.from(ts ? `${e.time} ${e.log}` : e.log));
    }
    ctx.res.end();
  });
  router.post(`/containers/${ID}/attach`, async (ctx) => {
    const q = ctx.query;
    const id = ctx.params.id as string;
    const tty = c.isTty(id);
    const h = await hijack(ctx);
    const write = writer(h.output, tty);
    await c.attach(
      id,
      { stdin: boolValue(q, 'stdin'), stdout: boolValue(q, 'stdout'), stderr: boolValue(q, 'stderr'), logs: boolValue(q, 'logs'), stream: boolValue(q, 'stream') },
      { write, input: boolValue(q, 'stdin') ? h.input : undefined, closed: h.closed },
    );
    h.close();
  });
}
