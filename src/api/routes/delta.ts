// balenaEngine's POST /images/delta?src=&dest=&t=: progress as JSON lines
// (pull's framing), ending with `Created delta: sha256:...`.
import { InvalidParameter, messageOf } from '../../errors.js';
import type { DeltaBackend } from '../backend.js';
import { JsonMessageWriter } from '../jsonstream.js';
import type { Router } from '../router.js';

export function deltaRoutes(router: Router, delta: DeltaBackend): void {
  router.post('/images/delta', async (ctx) => {
    const src = ctx.query.get('src') ?? '';
    const dest = ctx.query.get('dest') ?? '';
    if (!src) throw new InvalidParameter('src is required');
    if (!dest) throw new InvalidParameter('dest is required');
    const prepared = delta.prepareDelta(src, dest, ctx.query.get('t') || undefined);
    ctx.res.writeHead(200, { 'Content-Type': 'application/json' });
    ctx.res.flushHeaders();
    const out = new JsonMessageWriter(ctx.res);
    let queue = Promise.resolve();
    try {
      await prepared.run((e) => {
        queue = queue.then(() => out.write(e.id ? { status: e.status, progressDetail: {}, id: e.id } : { status: e.status }));
      });
      await queue;
    } catch (err) {
      await queue;
      await out.error(messageOf(err));
    }
    ctx.res.end();
  });
}
