import { InvalidParameter } from '../../errors.js';
import type { NetworksBackend } from '../backend.js';
import { jsonBody, parseFilters, type RequestContext } from '../context.js';
import { sendJSON, sendStatus } from '../respond.js';
import type { Router } from '../router.js';

const ID = '(?<id>[^/]+)';

async function objectBody(ctx: RequestContext): Promise<Record<string, unknown>> {
  const body = (await jsonBody(ctx)) ?? {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidParameter('invalid JSON: expected an object');
  return body as Record<string, unknown>;
}

export function networkRoutes(router: Router, networks: NetworksBackend): void {
  router.get('/networks', (ctx) => sendJSON(ctx.res, 200, networks.list(parseFilters(ctx.query))));
  router.post('/networks/create', async (ctx) => sendJSON(ctx.res, 201, await networks.create(await objectBody(ctx))));
  router.post('/networks/prune', async (ctx) => sendJSON(ctx.res, 200, await networks.prune(parseFilters(ctx.query))));
  router.get(`/networks/${ID}`, (ctx) => sendJSON(ctx.res, 200, networks.inspect(ctx.params.id as string)));
  router.delete(`/networks/${ID}`, async (ctx) => {
    await networks.remove(ctx.params.id as string);
    sendStatus(ctx.res, 204);
  });
  router.post(`/networks/${ID}/connect`, async (ctx) => {
    await networks.connect(ctx.params.id as string, await objectBody(ctx));
    sendStatus(ctx.res, 200);
  });
  router.post(`/networks/${ID}/disconnect`, async (ctx) => {
    await networks.disconnect(ctx.params.id as string, await objectBody(ctx));
    sendStatus(ctx.res, 200);
  });
}
