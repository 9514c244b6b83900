// balenaEngine's POST /images/delta?src=&dest=&t=: progress as JSON lines
// (pull's framing), ending with `Created delta: sha256:...`.
import { InvalidParameter } from '../../errors.js';
import type { DeltaBackend } from '../backend.js';
import { JsonLineStream } from '../jsonstream.js';
import type { Router } from '../router.js';

export function deltaRoutes(router: Router, delta: DeltaBackend): void {
  router.post('/images/delta', async (ctx) => {
    const src = ctx.query.get('src') ?? '';
    const dest = ctx.query.get('dest') ?? '';
    if (!src) throw new InvalidParameter('src is required');
    if (!dest) throw new InvalidParameter('dest is required');
    const prepared = delta.prepareDelta(src, dest, ctx.query.get('t') || undefined);
    const out = new JsonLineStream(ctx.res, { eager: true });
    try {
      await prepared.run((e) => out.write(e.id ? { status: e.status, progressDetail: {}, id: e.id } : { status: e.status }));
    } catch (err) {
      await out.end(err);
      return;
    }
    await out.end();
  });
}
