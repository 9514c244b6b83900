// The container service: Docker's container lifecycle over the container
// store, the image store (root filesystems) and the OCI runtime. Each
// running container has a monitor (exec/monitor.ts) that outlives the daemon
// and records the exit code, so state survives kill -9 of skiff.
import { EventEmitter } from 'node:events';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { Conflict, InvalidParameter, NotModified, SystemError, messageOf } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { nanoTime, type LogEntry } from '../exec/jsonlog.js';
import { effectiveLogConfig, openLogWriter, readLogs, validateLogConfig, type LogConfig, type LogWriter } from '../exec/logdriver.js';
import { startMonitor, readExit, monitorAlive, reattach, type MonitorExit } from '../exec/monitor.js';
import { OciRuntime, signalNumber } from '../exec/runtime.js';
import {
  buildSpec,
  capabilitiesFromMask,
  mergeConfig,
  parseProcLimits,
  specToJSON,
  validateHostConfig,
  volumeRequests,
  type ContainerConfig,
  type DeviceNode,
  type HostConfig,
  type ImageConfig,
} from '../exec/spec.js';
import { hostname as osHostname } from 'node:os';
import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { resolveUser } from '../exec/user.js';
import type { NetworkService } from '../net/service.js';
import { networkRequest, netView } from './netview.js';
import type { ImageService } from '../images/service.js';
import { ContainerStore, initialState, ZERO_TIME, type ContainerRecord } from '../store/containers.js';
import type { LayerStore } from '../store/layers.js';
import { mountOverlay, unmount } from '../store/mount.js';
import { checkName, randomName } from './names.js';
import { sample, type StatsSample } from './stats.js';
import { HealthMonitor } from './health.js';
import { wasOomKilled } from './oom.js';
import { resizeTerminal } from './exec.js';
import type { EventBus } from '../events/bus.js';
import type { VolumeService } from '../volumes/service.js';
import { abandonMountPoints, createMountPoints, mountsOf, releaseMountPoints, resolveVolumes } from './mounts.js';
import type { AttachOptions, ContainerSummary, LogsOptions, WaitCondition, WaitResult } from './types.js';
import type { OpenFiles } from './files.js';
import { KeyedLock } from './lock.js';
import { labelMatches } from '../filters.js';

export interface ContainerServiceOptions {
  store: ContainerStore;
  images: ImageService;
  layers: LayerStore;
  logger: Logger;
  runtimes: Record<string, { path: string; runtimeArgs: string[] }>;
  defaultRuntime: string;
  /** State of the OCI runtimes (on tmpfs: gone after a reboot, like the containers). */
  execRoot: string;
  logDriver: string;
  logOpts: Record<string, string>;
  liveRestore: boolean;
  events?: EventBus;
  /** Named and anonymous volumes; without it they are refused. */
  volumes?: VolumeService;
  net: NetworkService;
}

/** One output chunk of a running container, for attach and logs -f. */
interface Output {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

interface Running {
  monitor: { stdout: Readable; stderr?: Readable; stdin?: Writable; exited: Promise<MonitorExit> };
  output: EventEmitter;
  log: LogWriter | undefined;
  stdin: Writable | undefined;
}

export class ContainerService {
  private readonly running = new Map<string, Running>();
  /** Fired with the container id when a container stops or is removed. */
  private readonly events = new EventEmitter();
  private readonly runtimeCache = new Map<string, OciRuntime>();
  /** Held by a start and by file access to a stopped container (its root is mounted for the copy). */
  private readonly filesLock = new KeyedLock();

  constructor(private readonly o: ContainerServiceOptions) {
    this.events.setMaxListeners(0);
  }

  /** Publishes a container event with Docker's attributes (image, name, labels). */
  publish(c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    const cfg = c.Config as { Image?: string; Labels?: Record<string, string> | null };
    this.o.events?.publish('container', action, c.Id, { ...(cfg.Labels ?? {}), image: cfg.Image ?? c.Image, name: c.Name.slice(1), ...extra });
  }

  private runtime(name: string): OciRuntime {
    let rt = this.runtimeCache.get(name);
    if (!rt) {
      const spec = this.o.runtimes[name];
      if (!spec) throw new InvalidParameter(`unknown or invalid runtime name: ${name}`);
      rt = new OciRuntime({ name, path: spec.path, args: spec.runtimeArgs, root: join(this.o.execRoot, name), hideUnifiedCgroup: name === 'crun' });
      this.runtimeCache.set(name, rt);
    }
    return rt;
  }

  // ---- create ------------------------------------------------------------

  async create(name: string | undefined, body: unknown): Promise<{ Id: string; Warnings: string[] }> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidParameter('config cannot be empty in order to create a container');
    const b = body as Record<string, unknown>;
    const hostConfig = validateHostConfig(b.HostConfig ?? {});
    const imageName = b.Image;
    if (typeof imageName !== 'string' || imageName === '') throw new InvalidParameter('No command specified');
    const image = this.o.images.lookup(imageName);
    const imageCfg = (JSON.parse(image.config.toString('utf8')) as { config?: ImageConfig }).config ?? {};
    const runtimeName = (hostConfig.Runtime as string | undefined) || this.o.defaultRuntime;
    this.runtime(runtimeName);
    const mode = String(hostConfig.NetworkMode ?? 'default');
    const id = this.o.store.newId();
    const finalName = name ? checkName(name) : this.freeRandomName();
    const config = mergeConfig(imageCfg, b as ContainerConfig, { id, hostConfig, hostHostname: osHostname() });
    if (!this.o.volumes && volumeRequests(config, hostConfig).length > 0) {
      throw new InvalidParameter('named and anonymous volumes are not supported yet: use a bind mount (-v /host/path:/path)');
    }
    if (!config.Cmd?.length && !config.Entrypoint?.length) throw new InvalidParameter('No command specified');
    const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
    validateLogConfig(effectiveLogConfig(hostConfig.LogConfig as LogConfig | undefined, this.o.logDriver, this.o.logOpts));
    const netReq = networkRequest(b, hostConfig);
    const warnings = await this.o.net.created(id, mode === '' ? 'default' : mode, netReq.endpoints, netReq.asked);
    // Sharing another container's network namespace means sharing its name, as in Docker.
    if (mode.startsWith('container:')) {
      const joined = this.o.store.find(mode.slice('container:'.length));
      if (joined) config.Hostname = String((joined.Config as { Hostname?: string }).Hostname ?? '');
    }
    const mountPoints = this.o.volumes ? await createMountPoints(this.o.volumes, id, config, hostConfig).catch(async (err: unknown) => {
      await this.o.net.removed(id);
      throw err;
    }) : undefined;
    const rec: ContainerRecord = {
      Id: id,
      Name: `/${finalName}`,
      Created: new Date().toISOString(),
      Path: argv[0] as string,
      Args: argv.slice(1),
      Image: image.id,
      State: initialState(),
      RestartCount: 0,
      Config: { ...config, Image: imageName } as unknown as Record<string, unknown>,
      HostConfig: { ...hostConfig, NetworkMode: mode === '' ? 'default' : mode, Runtime: runtimeName } as unknown as Record<string, unknown>,
      MonitorPid: 0,
      ManuallyStopped: false,
      ...(mountPoints ? { MountPoints: mountPoints } : {}),
    };
    try {
      await this.o.store.create(rec);
    } catch (err) {
      if (this.o.volumes && mountPoints) await abandonMountPoints(this.o.volumes, id, mountPoints);
      await this.o.net.removed(id);
      throw err;
    }
    this.o.volumes?.settle(id);
    this.publish(rec, 'create');
    return { Id: id, Warnings: warnings };
  }

  private freeRandomName(): string {
    for (let i = 0; ; i++) {
      const n = i < 20 ? randomName() : `${randomName()}${i}`;
      if (!this.o.store.nameInUse(n)) return n;
    }
  }

  // ---- start ---------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const c = this.o.store.get(ref);
    if (c.State.Running) throw new NotModified();
    c.ManuallyStopped = false;
    try {
      await this.launch(c);
    } catch (err) {
      c.State = { ...c.State, Status: c.State.Status === 'created' ? 'created' : 'exited', Error: messageOf(err), Running: false, Pid: 0 };
      await this.o.store.save(c);
      await this.cleanupRun(c).catch(() => undefined);
      if ((c.HostConfig.AutoRemove as boolean | undefined) === true) await this.removeNow(c, true);
      // moby reports start failures as 400 with the runtime's words; the CLI maps them to 125/126/127.
      throw err instanceof SystemError || !(err instanceof Error && 'kind' in err) ? new InvalidParameter(messageOf(err)) : err;
    }
  }

  /** A start holds the container's files lock, so it never mounts over a `docker cp` of the stopped container. */
  private launch(c: ContainerRecord): Promise<void> {
    return this.filesLock.run(c.Id, () => this.launchLocked(c));
  }

  /** Mounts the container's root filesystem at its `merged` dir. */
  private async mountRootfs(c: ContainerRecord): Promise<void> {
    const p = this.o.store.paths(c.Id);
    const lowers = await this.lowerDirs(c);
    await fs.mkdir(p.merged, { recursive: true });
    await unmount(p.merged);
    if (lowers.length === 0) {
      // An image without layers (FROM scratch, nothing added): an empty lower.
      const empty = join(p.dir, 'rootfs', 'empty');
      await fs.mkdir(empty, { recursive: true });
      lowers.push(empty);
    }
    await mountOverlay(p.merged, lowers, p.upper, p.work, this.o.layers.overlayDir);
  }

  private async launchLocked(c: ContainerRecord): Promise<void> {
    const p = this.o.store.paths(c.Id);
    await this.mountRootfs(c);
    const cfg = c.Config as unknown as ContainerConfig;
    const hc = c.HostConfig as unknown as HostConfig;
    const hostname = (cfg.Hostname as string | undefined) || c.Id.slice(0, 12);
    await fs.writeFile(p.hostnamePath, `${hostname}\n`);
    const readRoot = (rel: string) => {
      try {
        return readFileSync(join(p.merged, rel), 'utf8');
      } catch {
        return undefined;
      }
    };
    const user = resolveUser(String(cfg.User ?? ''), readRoot('etc/passwd'), readRoot('etc/group'), (hc.GroupAdd as string[] | undefined) ?? []);
    const workdir = String(cfg.WorkingDir || '/');
    await fs.mkdir(join(p.merged, workdir), { recursive: true }).catch(() => undefined);
    // Volumes resolved (and seeded from the image on the first start) with the root mounted.
    const vols = this.o.volumes ? await resolveVolumes(this.o.volumes, c, p.merged) : undefined;
    if (vols?.changed) await this.o.store.save(c);
    // The namespace with its endpoints and ports, /etc/hosts and /etc/resolv.conf.
    const netns = await this.o.net.setUp(netView(this.o.store, c));
    const spec = buildSpec({
      id: c.Id,
      name: c.Name.slice(1),
      config: cfg,
      hostConfig: hc,
      rootfs: p.merged,
      user,
      netnsPath: netns,
      hostsPath: p.hostsPath,
      hostnamePath: p.hostnamePath,
      resolvPath: p.resolvPath,
      cgroupsPath: `/skiff/${c.Id}`,
      boundingCaps: HOST_CAPS,
      hostRlimits: HOST_RLIMITS,
      resolveDevice,
      ...(hc.Privileged ? { hostDevices: hostDevices() } : {}),
      ...(vols ? { volumes: vols.volumes } : {}),
    });
    // specToJSON, not JSON.stringify: an unlimited rlimit is 2^64-1, beyond a JS number.
    await fs.writeFile(join(p.bundle, 'config.json'), specToJSON(spec));
    const rt = this.runtimeOf(c);
    await rt.delete(c.Id, true).catch(() => false);
    const tty = cfg.Tty === true;
    const monitor = await startMonitor({ id: c.Id, runtime: rt, bundle: p.bundle, dir: p.dir, stdin: cfg.OpenStdin === true, tty });
    const running: Running = {
      monitor,
      output: new EventEmitter(),
      log: openLogWriter(this.logConfig(c), { dir: p.dir, jsonPath: p.logPath }),
      stdin: monitor.stdin,
    };
    running.output.setMaxListeners(0);
    this.running.set(c.Id, running);
    this.pipeOutput(c.Id, running);
    // Attached clients subscribe now, before any output can arrive (next tick at the earliest).
    this.events.emit('started', c.Id);
    c.State = { ...initialState(), ...(HealthMonitor.configOf(c) ? { Health: { Status: 'starting' as const, FailingStreak: 0, Log: [] } } : {}), Status: 'running', Running: true, Pid: monitor.containerPid, StartedAt: new Date().toISOString(), FinishedAt: ZERO_TIME };
    c.MonitorPid = monitor.pid;
    await this.o.store.save(c);
    this.publish(c, 'start');
    void monitor.exited.then((r) => this.onExit(c.Id, r.exitCode));
  }

  private pipeOutput(id: string, r: Running): void {
    const feed = (stream: 'stdout' | 'stderr', src: Readable | undefined) => {
      src?.on('data', (data: Buffer) => {
        void r.log?.write(stream, data);
        r.output.emit('data', { stream, data } satisfies Output);
      });
    };
    feed('stdout', r.monitor.stdout);
    feed('stderr', r.monitor.stderr);
    void id;
  }

  private async onExit(id: string, exitCode: number): Promise<void> {
    const c = this.o.store.find(id);
    const r = this.running.get(id);
    // As dockerd does: the output is copied to its end (every writer of the
    // FIFOs is gone once the monitor exited), or for 2 s at most, before the
    // exit is logged and reported. One turn of the event loop was not always enough.
    if (r) await Promise.all([drained(r.monitor.stdout, 2000), drained(r.monitor.stderr, 2000)]);
    await r?.log?.close();
    r?.output.emit('end');
    this.running.delete(id);
    if (!c) return;
    // A SIGKILL exit may be the OOM killer's: Docker reports it as OOMKilled.
    const oom = exitCode === 137 && wasOomKilled(c.Id);
    c.State = { ...c.State, Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: exitCode, OOMKilled: oom, FinishedAt: new Date().toISOString() };
    c.MonitorPid = 0;
    await this.o.store.save(c);
    await this.cleanupRun(c).catch((err: Error) => this.o.logger.warn('cleanup after exit failed', { container: id, error: err.message }));
    this.events.emit('exit', id, exitCode);
    if (oom) this.publish(c, 'oom');
    this.publish(c, 'die', { exitCode: String(exitCode) });
    if ((c.HostConfig.AutoRemove as boolean | undefined) === true) {
      await this.removeNow(c, true);
      return;
    }
    await this.maybeRestart(c, exitCode);
  }

  private async maybeRestart(c: ContainerRecord, exitCode: number): Promise<void> {
    const policy = (c.HostConfig.RestartPolicy ?? {}) as { Name?: string; MaximumRetryCount?: number };
    const name = policy.Name ?? 'no';
    if (c.ManuallyStopped || name === 'no' || name === '') return;
    if (name === 'on-failure' && (exitCode === 0 || (policy.MaximumRetryCount && c.RestartCount >= policy.MaximumRetryCount))) return;
    // Docker's back-off: 100 ms doubling, reset after 10 s of running.
    const ran = Date.parse(c.State.FinishedAt) - Date.parse(c.State.StartedAt);
    const delay = ran > 10_000 ? 100 : Math.min(100 * 2 ** Math.min(c.RestartCount, 10), 60_000);
    c.State = { ...c.State, Status: 'restarting', Restarting: true };
    await this.o.store.save(c);
    setTimeout(() => {
      const cur = this.o.store.find(c.Id);
      if (!cur || cur.ManuallyStopped || cur.State.Running) return;
      cur.RestartCount++;
      void this.launch(cur).catch(async (err: Error) => {
        cur.State = { ...cur.State, Status: 'exited', Restarting: false, Error: err.message };
        await this.o.store.save(cur);
      });
    }, delay).unref();
  }

  private async cleanupRun(c: ContainerRecord): Promise<void> {
    const p = this.o.store.paths(c.Id);
    await this.runtimeOf(c).delete(c.Id, true).catch(() => false);
    await unmount(p.merged);
    await this.o.net.tearDown(c.Id);
  }

  // ---- stop / kill -----------------------------------------------------------

  async kill(ref: string, signal: string | undefined): Promise<void> {
    const c = this.o.store.get(ref);
    if (!c.State.Running) throw new Conflict(`Cannot kill container: ${ref}: Container ${c.Id} is not running`);
    const sig = parseSignal(signal ?? 'KILL');
    if (sig === 9 || sig === 15) c.ManuallyStopped = true;
    await this.runtimeOf(c).kill(c.Id, sig, true);
    this.publish(c, 'kill', { signal: String(sig) });
  }

  async stop(ref: string, timeout: number | undefined): Promise<void> {
    const c = this.o.store.get(ref);
    if (!c.State.Running) throw new NotModified();
    c.ManuallyStopped = true;
    await this.o.store.save(c);
    const rt = this.runtimeOf(c);
    const cfg = c.Config as { StopSignal?: string; StopTimeout?: number };
    const t = timeout ?? cfg.StopTimeout ?? 10;
    const exited = this.nextExit(c.Id);
    const stopSignal = parseSignal(cfg.StopSignal ?? 'TERM');
    this.publish(c, 'kill', { signal: String(stopSignal) });
    await rt.kill(c.Id, stopSignal, true).catch(() => undefined);
    const done = await Promise.race([exited.then(() => true), sleep(Math.max(0, t) * 1000).then(() => false)]);
    if (!done) {
      this.publish(c, 'kill', { signal: '9' });
      await rt.kill(c.Id, 9, true).catch(() => undefined);
      await exited;
    }
    this.publish(c, 'stop');
  }

  async restart(ref: string, timeout: number | undefined): Promise<void> {
    const c = this.o.store.get(ref);
    if (c.State.Running) await this.stop(ref, timeout);
    await this.start(c.Id);
  }

  private nextExit(id: string): Promise<number> {
    return new Promise((resolve) => {
      const on = (cid: string, code: number) => {
        if (cid !== id) return;
        this.events.off('exit', on);
        resolve(code);
      };
      this.events.on('exit', on);
    });
  }

  // ---- wait ------------------------------------------------------------------

  /** Resolves when the condition holds; `cancel` drops the waiter (client went away). */
  wait(ref: string, condition: WaitCondition, cancel: AbortSignal): Promise<WaitResult> {
    const c = this.o.store.get(ref);
    const id = c.Id;
    if (condition === 'not-running' && !c.State.Running && c.State.Status !== 'restarting') {
      return Promise.resolve({ StatusCode: c.State.ExitCode, Error: null });
    }
    return new Promise((resolve) => {
      const onExit = (cid: string, code: number) => {
        if (cid !== id || condition === 'removed') return;
        done();
        resolve({ StatusCode: code, Error: null });
      };
      const onRemoved = (cid: string, code: number) => {
        if (cid !== id || condition !== 'removed') return;
        done();
        resolve({ StatusCode: code, Error: null });
      };
      const done = () => {
        this.events.off('exit', onExit);
        this.events.off('removed', onRemoved);
      };
      this.events.on('exit', onExit);
      this.events.on('removed', onRemoved);
      // The client went away (docker run -d drops its wait): settle, so the request ends.
      cancel.addEventListener(
        'abort',
        () => {
          done();
          resolve({ StatusCode: -1, Error: { Message: 'the client went away' } });
        },
        { once: true },
      );
    });
  }

  // ---- remove ------------------------------------------------------------------

  /** `removeVolumes` (rm -v) removes the container's anonymous volumes too. */
  async remove(ref: string, force: boolean, removeVolumes = false): Promise<void> {
    const c = this.o.store.get(ref);
    if (c.State.Running || c.State.Status === 'restarting') {
      if (!force) {
        throw new Conflict(`You cannot remove a running container ${c.Id}. Stop the container before attempting removal or force remove`);
      }
      c.ManuallyStopped = true;
      const exited = this.nextExit(c.Id);
      await this.runtimeOf(c).kill(c.Id, 9, true).catch(() => undefined);
      await Promise.race([exited, sleep(10_000)]);
      if ((c.HostConfig.AutoRemove as boolean | undefined) === true) return;
    }
    await this.removeNow(c, removeVolumes);
  }

  private async removeNow(c: ContainerRecord, removeVolumes = false): Promise<void> {
    if (!this.o.store.find(c.Id)) return;
    await this.cleanupRun(c).catch(() => undefined);
    await this.o.store.remove(c.Id);
    await this.o.net.removed(c.Id).catch((err: Error) => this.o.logger.warn('releasing networks failed', { container: c.Id, error: err.message }));
    if (this.o.volumes) {
      await releaseMountPoints(this.o.volumes, c, removeVolumes).catch((err: Error) => this.o.logger.warn('removing anonymous volumes failed', { container: c.Id, error: err.message }));
    }
    this.publish(c, 'destroy');
    this.events.emit('removed', c.Id, c.State.ExitCode);
  }

  // ---- queries -------------------------------------------------------------------

  inspect(ref: string): Record<string, unknown> {
    const c = this.o.store.get(ref);
    const p = this.o.store.paths(c.Id);
    return {
      Id: c.Id,
      Created: c.Created,
      Path: c.Path,
      Args: c.Args,
      State: c.State,
      Image: c.Image,
      ResolvConfPath: p.resolvPath,
      HostnamePath: p.hostnamePath,
      HostsPath: p.hostsPath,
      // As in moby: only json-file's path is shown; the local driver's files are not an API.
      LogPath: this.logConfig(c).Type === 'json-file' ? p.logPath : '',
      Name: c.Name,
      RestartCount: c.RestartCount,
      Driver: 'overlay2',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: null,
      HostConfig: c.HostConfig,
      GraphDriver: { Name: 'overlay2', Data: { MergedDir: p.merged, UpperDir: p.upper, WorkDir: p.work } },
      Mounts: mountsOf(this.o.volumes, c),
      Config: c.Config,
      NetworkSettings: this.o.net.settings(netView(this.o.store, c)),
    };
  }

  list(opts: { all: boolean; limit: number | undefined; filters: Map<string, string[]>; size?: boolean }): ContainerSummary[] {
    let list = this.o.store.list().sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
    if (!opts.all) list = list.filter((c) => c.State.Running || c.State.Status === 'restarting' || c.State.Paused);
    const f = opts.filters;
    for (const k of f.keys()) {
      if (!['id', 'name', 'label', 'status', 'ancestor', 'exited', 'health', 'before', 'since', 'network', 'volume', 'is-task'].includes(k)) {
        throw new InvalidParameter(`invalid filter '${k}'`);
      }
    }
    list = list.filter((c) => {
      const cfg = c.Config as { Labels?: Record<string, string> | null; Image?: string };
      if (f.get('id')?.length && !f.get('id')?.some((v) => c.Id.startsWith(v))) return false;
      if (f.get('name')?.length && !f.get('name')?.some((v) => new RegExp(v).test(c.Name.slice(1)))) return false;
      if (f.get('status')?.length && !f.get('status')?.includes(c.State.Status)) return false;
      if (f.get('exited')?.length && (c.State.Status !== 'exited' || !f.get('exited')?.includes(String(c.State.ExitCode)))) return false;
      if (f.get('health')?.length && !f.get('health')?.includes(c.State.Health?.Status ?? 'none')) return false;
      if (f.get('ancestor')?.length && !f.get('ancestor')?.some((a) => a === cfg.Image || this.tryImageId(a) === c.Image)) return false;
      if (f.get('network')?.length && !f.get('network')?.some((n) => this.o.net.networksOf(c.Id).includes(n))) return false;
      if (f.get('volume')?.length && !f.get('volume')?.some((v) => (c.MountPoints ?? []).some((m) => m.Name === v || m.Destination === v || (m.Type === 'bind' && m.Source === v)))) return false;
      if (!(f.get('label') ?? []).every((l) => labelMatches(cfg.Labels, l))) return false;
      return true;
    });
    if (opts.limit !== undefined && opts.limit > 0) list = list.slice(0, opts.limit);
    return list.map((c) => {
      const cfg = c.Config as { Labels?: Record<string, string> | null; Image?: string };
      const net = this.o.net.summary(netView(this.o.store, c));
      return {
        Id: c.Id,
        Names: [c.Name],
        Image: cfg.Image ?? c.Image,
        ImageID: c.Image,
        Command: [c.Path, ...c.Args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' '),
        Created: Math.floor(Date.parse(c.Created) / 1000),
        Ports: net.Ports,
        Labels: cfg.Labels ?? {},
        State: c.State.Status,
        Status: humanStatus(c),
        ...(opts.size ? this.sizes(c) : {}),
        HostConfig: { NetworkMode: String(c.HostConfig.NetworkMode ?? 'default') },
        NetworkSettings: net.NetworkSettings,
        Mounts: mountsOf(this.o.volumes, c),
      };
    });
  }

  /** `ps -s`: bytes in the container's writable layer, and that plus its image. */
  private sizes(c: ContainerRecord): { SizeRw: number; SizeRootFs: number } {
    const rw = treeSize(this.o.store.paths(c.Id).upper);
    let image = 0;
    try {
      image = this.o.images.inspect(c.Image).Size;
    } catch {
      image = 0;
    }
    return { SizeRw: rw, SizeRootFs: rw + image };
  }

  private tryImageId(name: string): string | undefined {
    try {
      return this.o.images.lookup(name).id;
    } catch {
      return undefined;
    }
  }

  counts(): { running: number; paused: number; stopped: number } {
    let running = 0;
    let paused = 0;
    let stopped = 0;
    for (const c of this.o.store.list()) {
      if (c.State.Paused) paused++;
      else if (c.State.Running) running++;
      else stopped++;
    }
    return { running, paused, stopped };
  }

  /** Image IDs that containers use (rmi answers 409 for them). */
  imagesInUse(): Map<string, string> {
    return new Map(this.o.store.list().map((c) => [c.Image, c.Id]));
  }

  // ---- logs and attach -------------------------------------------------------------

  /** The container's log driver and options (its own, else the daemon's). */
  private logConfig(c: ContainerRecord): LogConfig {
    return effectiveLogConfig(c.HostConfig.LogConfig as LogConfig | undefined, this.o.logDriver, this.o.logOpts);
  }

  isTty(ref: string): boolean {
    return (this.o.store.get(ref).Config as { Tty?: boolean }).Tty === true;
  }

  async *logs(ref: string, opts: LogsOptions, cancel: AbortSignal): AsyncGenerator<LogEntry> {
    const c = this.o.store.get(ref);
    const p = this.o.store.paths(c.Id);
    const driver = ((c.HostConfig.LogConfig as { Type?: string } | undefined)?.Type) || this.o.logDriver;
    if (driver === 'none') throw new InvalidParameter('configured logging driver does not support reading');
    const r = this.running.get(c.Id);
    // Subscribe before reading the file, so nothing falls between history and live output.
    const live: Output[] = [];
    let ended = !opts.follow || !r;
    let wake: (() => void) | undefined;
    const onData = (o: Output) => {
      live.push(o);
      wake?.();
    };
    const onEnd = () => {
      ended = true;
      wake?.();
    };
    if (opts.follow && r) {
      r.output.on('data', onData);
      r.output.once('end', onEnd);
    }
    cancel.addEventListener('abort', onEnd, { once: true });
    try {
      const stored = { dir: p.dir, jsonPath: p.logPath };
      if (opts.tail === 'all') {
        // Streamed: the local driver keeps up to 100 MB by default.
        for await (const e of readLogs(this.logConfig(c), stored)) if (wanted(e, opts)) yield e;
      } else if (opts.tail > 0) {
        // The last N in a ring, without moving the others.
        const ring: LogEntry[] = [];
        let next = 0;
        for await (const e of readLogs(this.logConfig(c), stored)) {
          if (!wanted(e, opts)) continue;
          if (ring.length < opts.tail) ring.push(e);
          else {
            ring[next] = e;
            next = (next + 1) % opts.tail;
          }
        }
        yield* ring.slice(next);
        yield* ring.slice(0, next);
      }
      // Live lines already in the file were read above; skip what arrived before the read finished.
      live.length = 0;
      while (!ended || live.length > 0) {
        const o = live.shift();
        if (o) {
          const e: LogEntry = { log: o.data.toString('utf8'), stream: o.stream, time: nanoTime() };
          if (wanted(e, opts)) yield e;
          continue;
        }
        await new Promise<void>((res) => (wake = res));
        wake = undefined;
      }
    } finally {
      r?.output.off('data', onData);
      r?.output.off('end', onEnd);
    }
  }

  /**
   * Attaches a client: live output (after the log history when `logs`), and
   * stdin to the container when asked. Resolves when the container stops or
   * the client goes away.
   */
  async attach(
    ref: string,
    opts: AttachOptions,
    io: { write(stream: 'stdout' | 'stderr', data: Buffer): Promise<void>; input: Readable | undefined; closed: Promise<void> },
  ): Promise<void> {
    const c = this.o.store.get(ref);
    const id = c.Id;
    const queue: Output[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const onData = (o: Output) => {
      queue.push(o);
      wake?.();
    };
    const finish = () => {
      done = true;
      wake?.();
    };
    const subscribe = (r: Running) => {
      r.output.on('data', onData);
      r.output.once('end', finish);
    };
    // A container attached before start: wait for it to run.
    const r0 = this.running.get(id);
    let pendingStart: ((cid: string) => void) | undefined;
    if (r0) subscribe(r0);
    else {
      pendingStart = (cid: string) => {
        if (cid !== id) return;
        const r = this.running.get(id);
        if (r) {
          subscribe(r);
          pipeStdin(r);
        }
      };
      this.events.on('started', pendingStart);
    }
    const onRemovedOrExit = (cid: string) => {
      if (cid === id && !this.running.get(id)) finish();
    };
    this.events.on('removed', onRemovedOrExit);
    void io.closed.then(finish);
    const pipeStdin = (r: Running) => {
      if (!opts.stdin || !io.input || !r.stdin) return;
      io.input.pipe(r.stdin, { end: (c.Config as { StdinOnce?: boolean }).StdinOnce === true });
    };
    if (r0) pipeStdin(r0);
    try {
      if (opts.logs && this.logConfig(c).Type !== 'none') {
        const p = this.o.store.paths(id);
        for await (const e of readLogs(this.logConfig(c), { dir: p.dir, jsonPath: p.logPath })) {
          if ((e.stream === 'stdout' && opts.stdout) || (e.stream === 'stderr' && opts.stderr)) await io.write(e.stream, Buffer.from(e.log));
        }
      }
      while (!done || queue.length > 0) {
        const o = queue.shift();
        if (o) {
          if ((o.stream === 'stdout' && opts.stdout) || (o.stream === 'stderr' && opts.stderr)) await io.write(o.stream, o.data);
          continue;
        }
        await new Promise<void>((res) => (wake = res));
        wake = undefined;
      }
    } finally {
      const r = this.running.get(id);
      r?.output.off('data', onData);
      r?.output.off('end', finish);
      if (pendingStart) this.events.off('started', pendingStart);
      this.events.off('removed', onRemovedOrExit);
    }
  }

  // ---- pause, rename, update, top, prune ---------------------------------------------------

  async pause(ref: string): Promise<void> {
    const c = this.o.store.get(ref);
    if (!c.State.Running) throw new Conflict(`Container ${c.Id} is not running`);
    if (c.State.Paused) throw new Conflict(`Container ${c.Id} is already paused`);
    await this.runtimeOf(c).pause(c.Id);
    c.State = { ...c.State, Paused: true, Status: 'paused' };
    await this.o.store.save(c);
    this.publish(c, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const c = this.o.store.get(ref);
    if (!c.State.Paused) throw new Conflict(`Container ${c.Id} is not paused`);
    await this.runtimeOf(c).resume(c.Id);
    c.State = { ...c.State, Paused: false, Status: 'running' };
    await this.o.store.save(c);
    this.publish(c, 'unpause');
  }

  async rename(ref: string, newName: string): Promise<void> {
    const c = this.o.store.get(ref);
    const n = checkName(newName);
    const other = this.o.store.nameInUse(n);
    if (other && other.Id !== c.Id) {
      throw new Conflict(`Conflict. The container name "/${n}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    const old = c.Name;
    c.Name = `/${n}`;
    await this.o.store.save(c);
    this.publish(c, 'rename', { oldName: old });
  }

  /** `docker update`: the restart policy now; resource changes while running go to the runtime. */
  async update(ref: string, body: unknown): Promise<{ Warnings: string[] }> {
    const c = this.o.store.get(ref);
    if (typeof body !== 'object' || body === null) throw new InvalidParameter('invalid update body');
    const b = body as Record<string, unknown>;
    const resources: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(b)) {
      if (v === undefined || v === null || v === 0 || v === '' || (Array.isArray(v) && v.length === 0)) continue;
      if (k === 'RestartPolicy') continue;
      if (['Memory', 'MemoryReservation', 'MemorySwap', 'NanoCpus', 'CpuShares', 'CpuQuota', 'CpuPeriod', 'CpusetCpus', 'PidsLimit'].includes(k)) {
        resources[k] = v;
        continue;
      }
      throw new InvalidParameter(`updating ${k} is not supported`);
    }
    // moby ignores a restart policy without a name (balena-supervisor sends {} on handover).
    const policy = b.RestartPolicy as { Name?: string } | undefined;
    const merged = validateHostConfig({ ...c.HostConfig, ...resources, ...(policy?.Name ? { RestartPolicy: policy } : {}) });
    if (Object.keys(resources).length > 0 && c.State.Running) {
      const mem = merged.Memory as number | undefined;
      const oci: Record<string, unknown> = {};
      if (mem) oci.memory = { limit: mem, ...(merged.MemoryReservation ? { reservation: merged.MemoryReservation } : {}) };
      const cpu: Record<string, unknown> = {};
      if (merged.CpuShares) cpu.shares = merged.CpuShares;
      if (merged.NanoCpus) {
        cpu.quota = Math.round((Number(merged.NanoCpus) / 1e9) * 100000);
        cpu.period = 100000;
      } else if (merged.CpuQuota) {
        cpu.quota = merged.CpuQuota;
        cpu.period = merged.CpuPeriod || 100000;
      }
      if (merged.CpusetCpus) cpu.cpus = merged.CpusetCpus;
      if (Object.keys(cpu).length) oci.cpu = cpu;
      if (merged.PidsLimit) oci.pids = { limit: merged.PidsLimit };
      await this.runtimeOf(c).update(c.Id, oci);
    }
    c.HostConfig = { ...c.HostConfig, ...(merged as unknown as Record<string, unknown>) };
    await this.o.store.save(c);
    this.publish(c, 'update');
    return { Warnings: [] };
  }

  /** `docker top`: ps output for the container's processes. */
  async top(ref: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    const c = this.o.store.get(ref);
    if (!c.State.Running) throw new Conflict(`Container ${c.Id} is not running`);
    const pids = await this.runtimeOf(c).ps(c.Id);
    const rows: string[][] = [];
    for (const pid of pids) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? '0';
        const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '0';
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
        rows.push([uid, String(pid), ppid, cmd]);
      } catch {
        // the process ended meanwhile
      }
    }
    return { Titles: ['UID', 'PID', 'PPID', 'CMD'], Processes: rows };
  }

  async prune(filters: Map<string, string[]>): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
    for (const k of filters.keys()) if (!['until', 'label'].includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    const deleted: string[] = [];
    for (const c of this.o.store.list()) {
      if (c.State.Running || c.State.Status === 'restarting' || c.State.Paused) continue;
      const labels = (c.Config as { Labels?: Record<string, string> | null }).Labels ?? {};
      if (filters.get('label')?.some((l) => !labelMatches(labels, l))) continue;
      await this.removeNow(c);
      deleted.push(c.Id);
    }
    return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: 0 };
  }

  /** Samples for `docker stats`: one, or one a second until the container stops or the client leaves. */
  async *stats(ref: string, stream: boolean, cancel: AbortSignal): AsyncGenerator<StatsSample> {
    const c = this.o.store.get(ref);
    let prev: StatsSample | undefined;
    for (;;) {
      const cur = this.o.store.find(c.Id);
      const running = cur?.State.Running === true;
      const s = sample(c.Id, (cur ?? c).Name.slice(1), `/skiff/${c.Id}`, running, prev);
      // The docker CLI needs a previous sample for CPU %: a one-shot read takes two, like dockerd.
      if (!stream && !prev && running) {
        prev = s;
        await sleep(100);
        continue;
      }
      yield s;
      if (!stream || !running || cancel.aborted) return;
      prev = s;
      await sleep(1000);
      if (cancel.aborted) return;
    }
  }

  /**
   * balenaEngine's --experimental behaviour: an unhealthy container is
   * restarted when its restart policy would restart it after an exit.
   */
  async restartUnhealthy(id: string): Promise<void> {
    const c = this.o.store.find(id);
    const policy = ((c?.HostConfig.RestartPolicy ?? {}) as { Name?: string }).Name ?? 'no';
    if (!c || !c.State.Running || policy === 'no' || policy === '') return;
    await this.restart(id, undefined);
  }

  // ---- daemon start and stop ------------------------------------------------------------

  /** After a daemon (re)start: learn what happened to containers while skiff was away. */
  async restore(): Promise<void> {
    for (const c of this.o.store.list()) {
      if (!c.State.Running && c.State.Status !== 'restarting') continue;
      const p = this.o.store.paths(c.Id);
      if (c.MonitorPid && monitorAlive(c.MonitorPid, c.Id)) {
        if (this.o.liveRestore) {
          const monitor = reattach(p.dir, c.MonitorPid);
          const running: Running = { monitor, output: new EventEmitter(), log: openLogWriter(this.logConfig(c), { dir: p.dir, jsonPath: p.logPath }), stdin: undefined };
          this.running.set(c.Id, running);
          this.pipeOutput(c.Id, running);
          void monitor.exited.then((r) => this.onExit(c.Id, r.exitCode));
          this.events.emit('started', c.Id);
          this.o.logger.info('restored running container', { container: c.Id.slice(0, 12) });
          continue;
        }
        // Docker's default: containers do not outlive the daemon.
        await this.runtimeOf(c).kill(c.Id, 9, true).catch(() => undefined);
        for (let i = 0; i < 50 && monitorAlive(c.MonitorPid, c.Id); i++) await sleep(100);
      }
      const exit = readExit(p.dir);
      c.State = { ...c.State, Status: 'exited', Running: false, Restarting: false, Pid: 0, ExitCode: exit?.exitCode ?? 255, FinishedAt: (exit?.finishedAt ?? new Date()).toISOString() };
      c.MonitorPid = 0;
      await this.o.store.save(c);
      await this.cleanupRun(c).catch(() => undefined);
      this.o.logger.info('container stopped while the daemon was down', { container: c.Id.slice(0, 12), exitCode: c.State.ExitCode });
    }
    // Restart policies are honoured when the daemon comes back (after a reboot too).
    for (const c of this.o.store.list()) {
      const policy = ((c.HostConfig.RestartPolicy ?? {}) as { Name?: string }).Name ?? 'no';
      if (c.State.Running || c.ManuallyStopped) continue;
      if (policy === 'always' || policy === 'unless-stopped' || (policy === 'on-failure' && c.State.ExitCode !== 0 && c.State.Status === 'exited')) {
        if (c.State.Status === 'created') continue;
        await this.launch(c).catch((err: Error) => this.o.logger.warn('restart at daemon start failed', { container: c.Id.slice(0, 12), error: err.message }));
      }
    }
  }

  /** Daemon shutdown: without live-restore, containers stop with the daemon (as in Docker). */
  async shutdown(): Promise<void> {
    if (this.o.liveRestore) return;
    try {
      await this.stopAll();
    } finally {
      // Nothing runs any more: the runtimes' state directories on tmpfs can go.
      if (this.running.size === 0) await fs.rm(this.o.execRoot, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async stopAll(): Promise<void> {
    await Promise.all(
      [...this.running.keys()].map(async (id) => {
        const c = this.o.store.find(id);
        if (!c) return;
        const exited = this.nextExit(id);
        await this.runtimeOf(c).kill(id, parseSignal((c.Config as { StopSignal?: string }).StopSignal ?? 'TERM'), true).catch(() => undefined);
        if (!(await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]))) {
          await this.runtimeOf(c).kill(id, 9, true).catch(() => undefined);
          await Promise.race([exited, sleep(5_000)]);
        }
      }),
    );
  }

  get emitter(): EventEmitter {
    return this.events;
  }

  // ---- exec and TTY size (used by containers/exec.ts) ----------------------------

  /** The OCI runtime a container runs on. */
  runtimeOf(c: ContainerRecord): OciRuntime {
    return this.runtime(String(c.HostConfig.Runtime ?? this.o.defaultRuntime));
  }

  // ---- files: docker cp, export, diff (containers/files.ts) ----------------------------

  /**
   * The container's files as cp, export and diff see them. A stopped
   * container's root is mounted until release(), and a start waits for that
   * (moby holds the container's lock the same way).
   */
  async openFiles(ref: string): Promise<OpenFiles> {
    const c = this.o.store.get(ref);
    const unlock = await this.filesLock.acquire(c.Id);
    const p = this.o.store.paths(c.Id);
    const base = { c, root: p.merged, mounts: this.fileMounts(c), readonlyRootfs: c.HostConfig.ReadonlyRootfs === true };
    try {
      if (c.State.Running) {
        unlock();
        return { ...base, release: async () => undefined };
      }
      await this.mountRootfs(c);
      let released = false;
      return {
        ...base,
        release: async () => {
          if (released) return;
          released = true;
          const cur = this.o.store.find(c.Id);
          if (!cur?.State.Running) await unmount(p.merged).catch(() => undefined);
          unlock();
        },
      };
    } catch (err) {
      unlock();
      throw err;
    }
  }

  async layerDirs(ref: string): Promise<{ upper: string; lowers: string[] }> {
    const c = this.o.store.get(ref);
    const lowers = (await this.lowerDirs(c)).map((l) => join(this.o.layers.overlayDir, l));
    return { upper: this.o.store.paths(c.Id).upper, lowers };
  }

  /** The image's layers as overlay lower dirs (short links relative to the layers' dir), top first. */
  private async lowerDirs(c: ContainerRecord): Promise<string[]> {
    const image = this.o.images.lookup(c.Image);
    const lowers: string[] = [];
    for (const chain of [...image.chainIds].reverse()) lowers.push(await this.o.layers.shortLink(chain));
    return lowers;
  }

  /** moby's setupMounts for cp: volumes and binds (not tmpfs), then the network files the runtime binds. */
  private fileMounts(c: ContainerRecord): OpenFiles['mounts'] {
    const out: OpenFiles['mounts'] = [];
    for (const mp of c.MountPoints ?? []) {
      if (mp.Type === 'tmpfs') continue;
      let source = mp.Source;
      if (mp.Type === 'volume') {
        const rec = mp.Name ? this.o.volumes?.store.get(mp.Name) : undefined;
        if (!rec || !this.o.volumes) continue;
        source = this.o.volumes.store.dataPath(rec);
      }
      out.push({ destination: mp.Destination, source, readOnly: !mp.RW, volume: true });
    }
    const p = this.o.store.paths(c.Id);
    const taken = new Set(out.map((m) => m.destination));
    for (const [source, destination] of [[p.resolvPath, '/etc/resolv.conf'], [p.hostnamePath, '/etc/hostname'], [p.hostsPath, '/etc/hosts']] as const) {
      if (!taken.has(destination) && existsSync(source)) out.push({ destination, source, readOnly: c.HostConfig.ReadonlyRootfs === true, volume: false });
    }
    return out;
  }

  /** POST /containers/{id}/resize: like containerd, a container without a TTY ignores it. */
  async resize(ref: string, height: number, width: number): Promise<void> {
    const c = this.o.store.get(ref);
    if (!c.State.Running) throw new Conflict(`Container ${c.Id} is not running`);
    if ((c.Config as { Tty?: boolean }).Tty !== true || !c.State.Pid) return;
    // monitor sh -> script -> runtime: the runtime's terminal first (see resizeTerminal).
    await resizeTerminal(c.MonitorPid, 2, c.State.Pid, height, width);
  }
}

/** The daemon's own capability bounding set: a container can get no more (privileged included). */
const HOST_CAPS = capabilitiesFromMask(/^CapBnd:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0');
/** The daemon's limits: a container's ulimits are capped at the hard ones (raising them is refused here). */
const HOST_RLIMITS = parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));

/** Bytes of regular files and symlinks under a directory, hard links once (Docker's du). */
function treeSize(dir: string): number {
  const seen = new Set<number>();
  let total = 0;
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      let st;
      try {
        st = lstatSync(`${d}/${n}`);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(`${d}/${n}`);
      else if (!seen.has(st.ino)) {
        seen.add(st.ino);
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}

/** Every device node under /dev (privileged containers get them all, as in Docker). */
function hostDevices(): Array<DeviceNode & { path: string }> {
  const out: Array<DeviceNode & { path: string }> = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const path = `${dir}/${n}`;
      if (['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/console', '/dev/ptmx'].includes(path)) continue;
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(path);
      else if (st.isCharacterDevice() || st.isBlockDevice()) out.push({ path, ...resolveDevice(path) });
    }
  };
  walk('/dev');
  return out;
}

function resolveDevice(path: string): DeviceNode {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new InvalidParameter(`error gathering device information while adding custom device "${path}": ${(err as Error).message}`);
  }
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : undefined;
  if (!type) throw new InvalidParameter(`error gathering device information while adding custom device "${path}": not a device node`);
  return { type, major: Math.floor(st.rdev / 256) & 0xfff, minor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00), fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

function wanted(e: LogEntry, o: LogsOptions): boolean {
  if (e.stream === 'stdout' && !o.stdout) return false;
  if (e.stream === 'stderr' && !o.stderr) return false;
  const t = Date.parse(e.time) / 1000;
  if (o.since && t < o.since) return false;
  if (o.until && t > o.until) return false;
  return true;
}

function parseSignal(s: string): number {
  const n = /^\d+$/.test(s) ? Number(s) : signalNumber(s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`);
  if (!n || n < 1 || n > 64) throw new InvalidParameter(`Invalid signal: ${s}`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** "Up 2 seconds", "Exited (3) 1 second ago", "Created" as `docker ps` prints them. */
export function humanStatus(c: ContainerRecord): string {
  const s = c.State;
  if (s.Status === 'created') return 'Created';
  if (s.Status === 'restarting') return `Restarting (${s.ExitCode}) ${ago(s.FinishedAt)}`;
  if (s.Running) {
    const health = s.Health ? ` (${s.Health.Status === 'starting' ? 'health: starting' : s.Health.Status})` : '';
    return `Up ${duration(Date.now() - Date.parse(s.StartedAt))}${s.Paused ? ' (Paused)' : health}`;
  }
  if (s.Status === 'dead') return 'Dead';
  return `Exited (${s.ExitCode}) ${ago(s.FinishedAt)}`;
}

function ago(iso: string): string {
  return `${duration(Date.now() - Date.parse(iso))} ago`;
}

/** Docker's units.HumanDuration. */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** Resolves when the stream has ended (or failed, or was destroyed), or after `ms`. */
function drained(stream: Readable | undefined, ms: number): Promise<void> {
  if (!stream || stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stream.off('end', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
