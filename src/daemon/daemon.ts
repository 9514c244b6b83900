// The daemon's life: lock the data root, open the API sockets, recover the
// stores and the network, serve; on SIGTERM/SIGINT stop accepting, let
// running requests finish for a grace period, cancel the rest and exit 0 —
// what init scripts on a board expect.
import { promises as fs, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ContainerFiles } from '../containers/files.js';
import { buildRouter, createApiServer, type Backend } from '../api/index.js';
import { errnoCode, SystemError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { DataRoot, ensureDataRoot } from '../store/dataroot.js';
import { systemInfo, versionInfo } from '../system/info.js';
import { ImageService } from '../images/service.js';
import { TransportService } from '../images/transport.js';
import { DistributionStore } from '../store/distribution.js';
import { RegistryClient, type RepositoryName } from '../pull/registry.js';
import type { AuthConfig } from '../pull/auth.js';
import { DeltaService } from '../delta/service.js';
import { openDeltaStore } from '../delta/store.js';
import { ImageStore } from '../store/images.js';
import { LayerStore } from '../store/layers.js';
import { RefStore } from '../store/refs.js';
import { ContainerStore } from '../store/containers.js';
import { VolumeStore } from '../store/volumes.js';
import { VolumeService } from '../volumes/service.js';
import { ContainerService } from '../containers/service.js';
import { containerDirectory } from '../containers/netview.js';
import { NetworkService } from '../net/service.js';
import { HealthMonitor } from '../containers/health.js';
import { ExecService } from '../containers/exec.js';
import { EventBus } from '../events/bus.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { VERSION, GIT_COMMIT } from '../version.js';
import type { DaemonConfig } from './config.js';
import { openListeners, type Listener } from './listeners.js';
import { lockDataRoot } from './lock.js';

export interface DaemonOptions {
  config: DaemonConfig;
  logger: Logger;
  /** The user passed --group (a missing group is then an error). */
  groupExplicit: boolean;
  /** How long running requests may take to finish after SIGTERM. */
  shutdownGraceMs?: number;
}

/** Resolves with the process exit code once the daemon has stopped. */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const { config, logger } = opts;
  if (process.getuid?.() !== 0) logger.warn('skiff daemon is not running as root; most operations will fail');
  logger.info('starting skiff daemon', { version: VERSION, commit: GIT_COMMIT, 'data-root': config.dataRoot });
  // Signals are caught from the first moment: a SIGTERM during start-up (an
  // init script giving up) must still end in a clean stop, not a kill.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => resolve(sig);
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // Node exits on SIGHUP by default; a daemon must survive its terminal going away.
    process.on('SIGHUP', () => logger.info('received SIGHUP; configuration reload is not supported, ignoring'));
  });

  const realRoot = await ensureDataRoot(config.dataRoot);
  const lock = await lockDataRoot(realRoot);
  const cleanups: Array<() => Promise<void>> = [() => lock.release()];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: Error) => logger.warn('cleanup failed', { error: err.message }));
  };

  // The sockets first, as dockerd does: a daemon that cannot listen (a bad
  // -H, --group or fd://) stops before it makes bridges, rules or anything
  // else. Requests that arrive meanwhile wait for the routes.
  let routes!: (router: ReturnType<typeof buildRouter>) => void;
  let noRoutes!: (err: Error) => void;
  const router = new Promise<ReturnType<typeof buildRouter>>((resolve, reject) => {
    routes = resolve;
    noRoutes = reject;
  });
  router.catch(() => undefined); // requests waiting on it get the error; nobody else needs it
  const api = createApiServer({ router, logger, experimental: config.experimental });
  let listeners: Listener[] = [];
  const closeApi = async () => {
    api.stopAccepting();
    await removeSockets(listeners);
  };
  try {
    await writePidfile(config.pidfile);
    cleanups.push(() => fs.rm(config.pidfile, { force: true }));
    listeners = await openListeners(config.hosts, () => api.newServer(), {
      group: config.group,
      groupExplicit: opts.groupExplicit,
      logger,
    });
  } catch (err) {
    await closeApi();
    await cleanup();
    throw err;
  }

  let containers: ContainerService;
  try {
    const root = await DataRoot.load(realRoot, logger);
    let backend: Backend;
    let net: NetworkService;
    ({ backend, containers, net } = await makeBackend(config, root, logger));
    cleanups.push(async () => net.shutdown());
    // Bridges and rules first, then the containers, then whatever a crash left behind.
    await net.start();
    await containers.restore();
    await net.reconcile();
    routes(buildRouter(backend));
  } catch (err) {
    noRoutes(err instanceof Error ? err : new SystemError(String(err)));
    await closeApi();
    api.closeAll();
    await cleanup();
    throw err;
  }
  logger.info('Daemon has completed initialization');

  const signal = await stopSignal;

  logger.info('Processing signal', { signal });
  // A second signal during the grace period means "now".
  let forced = false;
  const force = () => {
    forced = true;
  };
  process.on('SIGTERM', force);
  process.on('SIGINT', force);

  api.stopAccepting();
  await removeSockets(listeners);
  await containers.shutdown().catch((err: Error) => logger.warn('stopping containers failed', { error: err.message }));
  const deadline = Date.now() + (opts.shutdownGraceMs ?? 10_000);
  while (api.active() > 0 && Date.now() < deadline && !forced) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (api.active() > 0) logger.warn('cancelling requests still running at shutdown', { count: api.active() });
  api.closeAll();
  await cleanup();
  logger.info('Daemon shutdown complete');
  return 0;
}

/** Opens the stores (each runs its start-up recovery) and the services over them. */
async function makeBackend(config: DaemonConfig, root: DataRoot, logger: Logger): Promise<{ backend: Backend; containers: ContainerService; net: NetworkService }> {
  const events = new EventBus();
  const layers = await LayerStore.open(root.path, logger);
  const images = await ImageStore.open(root.path, layers, logger);
  const refs = await RefStore.open(root.path, (id) => images.get(id) !== undefined);
  const registryClient = (ref: RepositoryName, auth: AuthConfig | undefined) =>
    new RegistryClient(ref, {
      insecureRegistries: config.insecureRegistries,
      mirrors: config.registryMirrors,
      userAgent: `skiff/${VERSION}`,
      ...(auth ? { auth } : {}),
    });
  const blobs = await DistributionStore.open(root.path, new Set(layers.list().map((l) => l.diffId)), logger);
  const deltaStore = config.deltaDataRoot ? await openDeltaStore(config.deltaDataRoot, logger) : undefined;
  const service = new ImageService({
    recordBlobs: (entries) => blobs.add(entries),
    layers,
    images,
    refs,
    dataRoot: root.path,
    maxConcurrentDownloads: config.maxConcurrentDownloads,
    maxDownloadAttempts: config.maxDownloadAttempts,
    events,
    ...(deltaStore ? { deltaStore } : {}),
    registry: registryClient,
  });
  const containerStore = await ContainerStore.open(root.path, logger);
  const net = await NetworkService.open({
    dataRoot: root.path,
    logger,
    events,
    config, // a DaemonConfig is a NetConfig
  });
  net.setContainers(containerDirectory(containerStore));
  const volumes = new VolumeService(await VolumeStore.open(root.path, logger), events);
  // A volume is in use while any container (running or not) names it.
  volumes.setUsers((name) =>
    containerStore
      .list()
      .filter((c) => c.MountPoints?.some((m) => m.Type === 'volume' && m.Name === name))
      .map((c) => c.Id),
  );
  const containers = new ContainerService({
    store: containerStore,
    images: service,
    layers,
    logger,
    runtimes: config.runtimes,
    defaultRuntime: config.defaultRuntime,
    // Runtime state lives on tmpfs, like the containers it describes: gone after a reboot.
    execRoot: join('/run/skiff', createHash('sha256').update(root.path).digest('hex').slice(0, 12)),
    logDriver: config.logDriver,
    logOpts: config.logOpts,
    liveRestore: config.liveRestore,
    events,
    volumes,
    net,
  });
  service.setImageInUse((id) => containers.imagesInUse().get(id));
  const execService = new ExecService({ store: containerStore, containers, logger });
  // Health checks run through exec; started and stopped with each container.
  new HealthMonitor({ store: containerStore, exec: execService, host: containers, events, logger, experimental: config.experimental });
  const transport = new TransportService({
    layers,
    images,
    refs,
    lookup: (name) => service.lookup(name),
    hold: (imgs) => service.hold(imgs),
    events,
    blobs,
    registry: registryClient,
    maxConcurrentUploads: config.maxConcurrentUploads,
    maxAttempts: config.maxDownloadAttempts,
    ...(deltaStore ? { deltaStore } : {}),
  });
  const backend: Backend = {
    system: {
      version: () => versionInfo(config.experimental),
      info: () =>
        systemInfo({
          config,
          dataRoot: root.path,
          engineId: root.engineId,
          counts: { containers: containers.counts(), images: images.list().length },
          eventListeners: events.listeners,
        }),
    },
    images: service,
    delta: await DeltaService.open({
      layers,
      images,
      dataRoot: root.path,
      lookup: (name) => service.lookup(name),
      hold: (imgs) => service.hold(imgs),
      tag: (id, ref) => service.tag(id, ref, undefined),
      logger,
    }),
    containers,
    events,
    volumes,
    exec: execService,
    transport,
    networks: net,
    files: new ContainerFiles(containers),
  };
  return { backend, containers, net };
}

async function removeSockets(listeners: Listener[]): Promise<void> {
  for (const l of listeners) if (l.socketPath) await fs.rm(l.socketPath, { force: true }).catch(() => undefined);
}

/** dockerd's rule: refuse to start if the pid file names a live process that is not us. */
async function writePidfile(path: string): Promise<void> {
  try {
    const old = (await fs.readFile(path, 'utf8')).trim();
    if (/^\d+$/.test(old) && Number(old) !== process.pid && processAlive(Number(old)) && looksLikeSkiff(Number(old))) {
      throw new SystemError(`pid file found, ensure skiff is not running or delete ${path}`);
    }
  } catch (err) {
    if (err instanceof SystemError) throw err;
    if (errnoCode(err) !== 'ENOENT') throw new SystemError(`reading pid file ${path}: ${(err as Error).message}`);
  }
  await fs.mkdir(dirname(path), { recursive: true });
  await fs.writeFile(path, `${process.pid}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

function looksLikeSkiff(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('skiff');
  } catch {
    return false;
  }
}
