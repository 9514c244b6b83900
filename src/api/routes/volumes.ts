import { InvalidParameter } from '../../errors.js';
import type { VolumesBackend } from '../backend.js';
import { boolValue, jsonBody, parseFilters } from '../context.js';
import { sendJSON, sendStatus } from '../respond.js';
import type { Router } from '../router.js';

export function volumeRoutes(router: Router, volumes: VolumesBackend): void {
  router.get('/volumes', (ctx) => sendJSON(ctx.res, 200, volumes.list(parseFilters(ctx.query))));
  router.post('/volumes/create', async (ctx) => {
    const body = (await jsonBody(ctx)) ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidParameter('invalid JSON: expected an object');
    const b = body as Record<string, unknown>;
    const str = (k: string): string | undefined => {
      const v = b[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string') throw new InvalidParameter(`invalid ${k}: expected a string`);
      return v;
    };
    const name = str('Name');
    const driver = str('Driver');
    sendJSON(
      ctx.res,
      201,
      await volumes.create({
        ...(name !== undefined ? { Name: name } : {}),
        ...(driver !== undefined ? { Driver: driver } : {}),
        DriverOpts: b.DriverOpts as Record<string, string> | null | undefined,
        Labels: b.Labels as Record<string, string> | null | undefined,
      }),
    );
  });
  router.post('/volumes/prune', async (ctx) => sendJSON(ctx.res, 200, await volumes.prune(parseFilters(ctx.query))));
  router.get('/volumes/(?<name>[^/]+)', (ctx) => sendJSON(ctx.res, 200, volumes.inspect(ctx.params.name as string)));
  // 204 only: dockerode accepts nothing else for volume.remove.
  router.delete('/volumes/(?<name>[^/]+)', async (ctx) => {
    await volumes.remove(ctx.params.name as string, boolValue(ctx.query, 'force'));
    sendStatus(ctx.res, 204);
  });
}
