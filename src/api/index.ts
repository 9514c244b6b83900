import type { Backend } from './backend.js';
import { containerRoutes } from './routes/containers.js';
import { eventRoutes } from './routes/events.js';
import { imageRoutes } from './routes/images.js';
import { systemRoutes } from './routes/system.js';
import { Router } from './router.js';

/** Every route the daemon serves, in matching order. */
export function buildRouter(backend: Backend): Router {
  const router = new Router();
  systemRoutes(router, backend.system);
  imageRoutes(router, backend.images);
  containerRoutes(router, backend.containers);
  eventRoutes(router, backend.events);
  return router;
}

export { createApiServer, type ApiServer } from './server.js';
export type { Backend } from './backend.js';
