import { Unavailable } from '../../errors.js';
import type { SystemBackend } from '../backend.js';
import { sendJSON } from '../respond.js';
import type { Router } from '../router.js';

const SWARM_MESSAGE =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

export function systemRoutes(router: Router, system: SystemBackend): void {
  const ping = (withBody: boolean) => (ctx: { res: import('node:http').ServerResponse }) => {
    const res = ctx.res;
    res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
    res.setHeader('Pragma', 'no-cache');
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': withBody ? 2 : 0 });
    res.end(withBody ? 'OK' : undefined);
  };
  router.get('/_ping', ping(true));
  router.head('/_ping', ping(false));
  router.get('/version', (ctx) => sendJSON(ctx.res, 200, system.version()));
  router.get('/info', (ctx) => sendJSON(ctx.res, 200, system.info()));

  // skiff, like balenaEngine, has no swarm mode; answer as a non-manager node.
  for (const method of ['GET', 'POST', 'DELETE']) {
    router.add(method, '/(?:swarm|nodes|services|tasks|secrets|configs)(?:/.*)?', () => {
      throw new Unavailable(SWARM_MESSAGE);
    });
  }
}
