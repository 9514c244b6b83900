import type { Backend } from './backend.js';
import { containerRoutes } from './routes/containers.js';
import { deltaRoutes } from './routes/delta.js';
import { eventRoutes } from './routes/events.js';
import { execRoutes } from './routes/exec.js';
import { fileRoutes } from './routes/files.js';
import { imageRoutes } from './routes/images.js';
import { networkRoutes } from './routes/networks.js';
import { systemRoutes } from './routes/system.js';
import { transportRoutes } from './routes/transport.js';
import { volumeRoutes } from './routes/volumes.js';
import { Router } from './router.js';

/** Every route the daemon serves, in matching order. */
export function buildRouter(backend: Backend): Router {
  const router = new Router();
  systemRoutes(router, backend.system);
  if (backend.delta) deltaRoutes(router, backend.delta);
  transportRoutes(router, backend.transport);
  imageRoutes(router, backend.images, backend.volumes);
  containerRoutes(router, backend.containers);
  fileRoutes(router, backend.files);
  execRoutes(router, backend.exec);
  eventRoutes(router, backend.events);
  volumeRoutes(router, backend.volumes);
  networkRoutes(router, backend.networks);
  return router;
}

export { createApiServer, type ApiServer } from './server.js';
export type { Backend } from './backend.js';
