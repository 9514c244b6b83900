// docker save, load and push: archives and registry uploads.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidParameter, messageOf } from '../../errors.js';
import { Throttle } from '../../images/progress.js';
import type { PushEvent } from '../../images/push.js';
import type { TransportBackend } from '../backend.js';
import { boolValue } from '../context.js';
import { errorMessage, JsonLineStream, progressMessage, type JsonMessage } from '../jsonstream.js';
import type { Router } from '../router.js';

/** Docker's JSON line for a push event. */
export function pushMessage(e: PushEvent): JsonMessage {
  switch (e.kind) {
    case 'status':
      return { status: e.text };
    case 'layer':
      return e.current !== undefined ? progressMessage(e.id, e.status, e.current, e.total) : { status: e.status, progressDetail: {}, id: e.id };
    case 'pushed':
      return { progressDetail: {}, aux: { Tag: e.tag, Digest: e.digest, Size: e.size } };
  }
}

/** The request body; a client that breaks it off made a bad request (400), not the daemon. */
async function* requestBody(req: IncomingMessage): AsyncGenerator<Buffer> {
  try {
    for await (const c of req) yield c as Buffer;
  } catch (err) {
    throw new InvalidParameter(`reading the archive from the request: ${messageOf(err)}`);
  }
}

export function transportRoutes(router: Router, transport: TransportBackend): void {
  const save = async (res: ServerResponse, names: string[]) => {
    if (names.length === 0) throw new InvalidParameter('no image names given');
    const tar = await transport.save(names);
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    tar.on('error', () => res.destroy());
    res.on('close', () => tar.destroy());
    tar.pipe(res);
  };
  router.get('/images/get', (ctx) => save(ctx.res, ctx.query.getAll('names').flatMap((n) => n.split(',')).filter(Boolean)));
  router.get('/images/(?<name>.+)/get', (ctx) => save(ctx.res, [ctx.params.name as string]));

  router.post('/images/load', async (ctx) => {
    // dockerd: quiet unless asked otherwise, and every error (a corrupt archive too) goes in the
    // 200 stream, where the docker CLI prints it and exits 1.
    const quiet = ctx.query.has('quiet') ? boolValue(ctx.query, 'quiet') : true;
    const out = new JsonLineStream(ctx.res);
    const throttle = new Throttle();
    try {
      await transport.load(requestBody(ctx.req), (e) => {
        if (e.kind === 'loaded') out.write({ stream: e.text });
        else if (!quiet && throttle.due(e.id, e.current === e.total)) out.write(progressMessage(e.id, 'Loading layer', e.current, e.total));
      });
    } catch (err) {
      // The rest of the body is not wanted; let the client finish sending it.
      ctx.req.resume();
      out.write(errorMessage(messageOf(err)));
    }
    await out.end();
  });

  router.post('/images/(?<name>.+)/push', async (ctx) => {
    const auth = ctx.req.headers['x-registry-auth'];
    const prepared = await transport.preparePush(ctx.params.name as string, ctx.query.get('tag') ?? undefined, typeof auth === 'string' ? auth : undefined);
    const out = new JsonLineStream(ctx.res);
    const abort = new AbortController();
    ctx.res.on('close', () => abort.abort());
    try {
      await prepared.run((e) => out.write(pushMessage(e)), abort.signal);
    } catch (err) {
      await out.end(err);
      return;
    }
    await out.end();
  });
}
