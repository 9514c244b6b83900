import type { PullEvent } from '../../images/progress.js';
import { InvalidParameter, NotImplemented } from '../../errors.js';
import type { ImagesBackend, VolumesBackend } from '../backend.js';
import { boolValue, jsonBody, parseFilters } from '../context.js';
import type { AuthConfig } from '../../pull/auth.js';
import { JsonLineStream, progressMessage, type JsonMessage } from '../jsonstream.js';
import { sendJSON, sendStatus } from '../respond.js';
import type { Router } from '../router.js';

/** Docker's JSON line for a pull event. */
export function pullMessage(e: PullEvent): JsonMessage {
  switch (e.kind) {
    case 'status':
      return e.id ? { status: e.text, id: e.id } : { status: e.text };
    case 'total':
      return { id: 'Total', progressDetail: { current: e.current, total: e.total } };
    case 'layer':
      return e.current !== undefined ? progressMessage(e.id, e.status, e.current, e.total) : { status: e.status, progressDetail: {}, id: e.id };
  }
}

export function imageRoutes(router: Router, images: ImagesBackend, volumes?: VolumesBackend): void {
  router.post('/images/create', async (ctx) => {
    const q = ctx.query;
    if (q.get('fromSrc') !== null) {
      throw new NotImplemented('importing images from a tarball (fromSrc) is not supported yet');
    }
    const auth = ctx.req.headers['x-registry-auth'];
    const prepared = await images.preparePull(
      q.get('fromImage') ?? '',
      q.get('tag') ?? undefined,
      q.get('platform') ?? undefined,
      typeof auth === 'string' ? auth : undefined,
    );
    const out = new JsonLineStream(ctx.res, { eager: true });
    // A client that hangs up cancels the pull; committed layers stay for the next try.
    const abort = new AbortController();
    ctx.res.on('close', () => abort.abort());
    try {
      await prepared.run((e) => out.write(pullMessage(e)), abort.signal);
    } catch (err) {
      await out.end(err);
      return;
    }
    await out.end();
  });
  router.get('/images/json', (ctx) => {
    sendJSON(ctx.res, 200, images.list({ all: boolValue(ctx.query, 'all'), filters: parseFilters(ctx.query) }));
  });
  router.post('/images/prune', async (ctx) => {
    sendJSON(ctx.res, 200, await images.prune(parseFilters(ctx.query)));
  });
  router.get('/images/(?<name>.+)/json', (ctx) => sendJSON(ctx.res, 200, images.inspect(ctx.params.name as string)));
  router.get('/images/(?<name>.+)/history', (ctx) => sendJSON(ctx.res, 200, images.history(ctx.params.name as string)));
  router.post('/images/(?<name>.+)/tag', async (ctx) => {
    await images.tag(ctx.params.name as string, ctx.query.get('repo') ?? '', ctx.query.get('tag') ?? undefined);
    sendStatus(ctx.res, 201);
  });
  router.delete('/images/(?<name>.+)', async (ctx) => {
    sendJSON(ctx.res, 200, await images.remove(ctx.params.name as string, { force: boolValue(ctx.query, 'force'), noprune: boolValue(ctx.query, 'noprune') }));
  });
  router.post('/auth', async (ctx) => {
    const body = await jsonBody(ctx);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidParameter('invalid JSON: expected an object');
    const b = body as Record<string, unknown>;
    const str = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : undefined);
    const auth: AuthConfig = {};
    for (const k of ['username', 'password', 'auth', 'serveraddress', 'identitytoken', 'registrytoken'] as const) {
      const v = str(k);
      if (v !== undefined) auth[k] = v;
    }
    sendJSON(ctx.res, 200, await images.login(auth));
  });
  router.post('/skiff/check', async (ctx) => sendJSON(ctx.res, 200, await images.check()));
  router.get('/system/df', async (ctx) => {
    const vols = volumes ? await volumes.diskUsage() : [];
    sendJSON(ctx.res, 200, {
      LayersSize: images.layersSize(),
      Images: images.diskUsage(),
      Containers: [],
      Volumes: vols,
      BuildCache: [],
    });
  });
}
