import { InvalidParameter } from '../../errors.js';
import { matches, parseEventTime, type EngineEvent, type EventBus } from '../../events/bus.js';
import { parseFilters } from '../context.js';
import type { Router } from '../router.js';

const KNOWN = ['type', 'event', 'container', 'image', 'label', 'volume', 'network', 'daemon', 'scope', 'plugin', 'node', 'service', 'secret', 'config'];

export function eventRoutes(router: Router, bus: EventBus): void {
  router.get('/events', async (ctx) => {
    const filters = parseFilters(ctx.query);
    for (const k of filters.keys()) if (!KNOWN.includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    const since = parseEventTime(ctx.query.get('since'));
    const until = parseEventTime(ctx.query.get('until'));
    if (Number.isNaN(since) || Number.isNaN(until)) throw new InvalidParameter('invalid since/until: expected unix seconds');
    const res = ctx.res;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const send = (e: EngineEvent) => res.write(JSON.stringify(e) + '\n');
    const inWindow = (e: EngineEvent) => (since === undefined || e.timeNano >= since) && (until === undefined || e.timeNano <= until);
    if (since !== undefined) for (const e of bus.history()) if (inWindow(e) && matches(e, filters)) send(e);
    const nowNano = Date.now() * 1e6;
    if (until !== undefined && until <= nowNano) {
      res.end();
      return;
    }
    await new Promise<void>((resolve) => {
      const unsubscribe = bus.subscribe((e) => {
        if (inWindow(e) && matches(e, filters)) send(e);
      });
      const timer = until !== undefined ? setTimeout(finish, Math.max(0, (until - nowNano) / 1e6)) : undefined;
      function finish(): void {
        unsubscribe();
        if (timer) clearTimeout(timer);
        res.end();
        resolve();
      }
      res.on('close', finish);
    });
  });
}
