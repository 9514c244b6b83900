// What the API needs from the engine, as narrow interfaces: api/ translates
// HTTP to these calls and never touches the host or the data root itself.
import type { SystemInfo, VersionInfo } from '../system/info.js';
import type { PullListener } from '../images/progress.js';
import type { AuthConfig } from '../pull/auth.js';
import type { DeleteItem, HistoryItem, ImageInspect, ImageSummary, PruneReport } from '../images/types.js';
import type { Filters } from './context.js';
import type { PushEvent } from '../images/push.js';
import type { LoadEvent } from '../images/load.js';
import type { Readable } from 'node:stream';
import type { AttachOptions, ContainerSummary, LogsOptions, WaitCondition, WaitResult } from '../containers/types.js';
import type { LogEntry } from '../exec/jsonlog.js';
import type { StatsSample } from '../containers/stats.js';
import type { ExecInspect, ExecIO } from '../containers/exec.js';
import type { EventBus } from '../events/bus.js';
import type { VolumeInfo } from '../store/volumes.js';
import type { CreateVolumeOptions } from '../volumes/service.js';
import type { NetworkResource } from '../net/types.js';
import type { DeltaEvent } from '../delta/create.js';
import type { Change, PathStat } from '../containers/files.js';

export interface DeltaBackend {
  /** Resolves both images (404 before any output), then `run` streams the progress. */
  prepareDelta(src: string, dest: string, tag: string | undefined): { run(emit: (e: DeltaEvent) => void): Promise<void> };
}

export interface SystemBackend {
  version(): VersionInfo;
  info(): SystemInfo;
}

export interface ImagesBackend {
  /** Resolves what to pull; throws (→ a status code) before any progress is streamed. */
  preparePull(
    fromImage: string,
    tag: string | undefined,
    platform: string | undefined,
    registryAuth: string | undefined,
  ): Promise<{ run(emit: PullListener, signal?: AbortSignal): Promise<void> }>;
  list(opts: { all: boolean; filters: Filters }): ImageSummary[];
  inspect(name: string): ImageInspect;
  history(name: string): HistoryItem[];
  tag(name: string, repo: string, tag: string | undefined): Promise<void>;
  remove(name: string, opts: { force: boolean; noprune: boolean }): Promise<DeleteItem[]>;
  prune(filters: Filters): Promise<PruneReport>;
  layersSize(): number;
  diskUsage(): ImageSummary[];
  login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }>;
  /** skiff's own: every layer's tar rebuilt and compared with its DiffID. */
  check(): Promise<Array<{ chainId: string; diffId: string; ok: boolean; actual: string }>>;
}

export interface TransportBackend {
  /** docker save: names resolve (404) before the tar starts. */
  save(names: string[]): Promise<Readable>;
  /** docker load: the archive is read once from `body`. */
  load(body: AsyncIterable<Buffer>, emit: (e: LoadEvent) => void): Promise<void>;
  /** docker push: throws (→ a status code) before any progress is streamed. */
  preparePush(name: string, tag: string | undefined, registryAuth: string | undefined): Promise<{ run(emit: (e: PushEvent) => void, signal?: AbortSignal): Promise<void> }>;
}

export interface ContainersBackend {
  create(name: string | undefined, body: unknown): Promise<{ Id: string; Warnings: string[] }>;
  list(opts: { all: boolean; limit: number | undefined; filters: Filters; size?: boolean }): ContainerSummary[];
  inspect(ref: string): Record<string, unknown>;
  start(ref: string): Promise<void>;
  stop(ref: string, timeout: number | undefined): Promise<void>;
  restart(ref: string, timeout: number | undefined): Promise<void>;
  kill(ref: string, signal: string | undefined): Promise<void>;
  wait(ref: string, condition: WaitCondition, cancel: AbortSignal): Promise<WaitResult>;
  /** `removeVolumes`: rm -v (the container's anonymous volumes go too). */
  remove(ref: string, force: boolean, removeVolumes?: boolean): Promise<void>;
  resize(ref: string, height: number, width: number): Promise<void>;
  isTty(ref: string): boolean;
  stats(ref: string, stream: boolean, cancel: AbortSignal): AsyncGenerator<StatsSample>;
  pause(ref: string): Promise<void>;
  unpause(ref: string): Promise<void>;
  rename(ref: string, name: string): Promise<void>;
  update(ref: string, body: unknown): Promise<{ Warnings: string[] }>;
  top(ref: string): Promise<{ Titles: string[]; Processes: string[][] }>;
  prune(filters: Filters): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>;
  logs(ref: string, opts: LogsOptions, cancel: AbortSignal): AsyncGenerator<LogEntry>;
  attach(
    ref: string,
    opts: AttachOptions,
    io: { write(stream: 'stdout' | 'stderr', data: Buffer): Promise<void>; input: Readable | undefined; closed: Promise<void> },
  ): Promise<void>;
}

export interface ExecBackend {
  create(ref: string, body: unknown): { Id: string };
  inspect(id: string): ExecInspect;
  /** Throws (→ a status code) unless the exec can be started. */
  check(id: string): void;
  start(id: string, io: ExecIO | undefined): Promise<void>;
  resize(id: string, height: number, width: number): Promise<void>;
}

export interface VolumesBackend {
  list(filters: Filters): { Volumes: VolumeInfo[]; Warnings: string[] | null };
  inspect(name: string): VolumeInfo;
  create(opts: CreateVolumeOptions): Promise<VolumeInfo>;
  remove(name: string, force: boolean): Promise<void>;
  prune(filters: Filters): Promise<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>;
  /** Every volume with UsageData (GET /system/df). */
  diskUsage(): Promise<VolumeInfo[]>;
}

export interface NetworksBackend {
  list(filters: Filters): NetworkResource[];
  inspect(ref: string): NetworkResource;
  create(body: Record<string, unknown>): Promise<{ Id: string; Warning: string }>;
  remove(ref: string): Promise<void>;
  prune(filters: Filters): Promise<{ NetworksDeleted: string[] | null }>;
  connect(ref: string, body: Record<string, unknown>): Promise<void>;
  disconnect(ref: string, body: Record<string, unknown>): Promise<void>;
}

/** A container's files: docker cp, export, diff. */
export interface FilesBackend {
  stat(ref: string, path: string): Promise<PathStat>;
  /** The tar streams after the stat is known; dropping the generator (return()) releases the files. */
  archive(ref: string, path: string): Promise<{ stat: PathStat; tar: AsyncGenerator<Buffer> }>;
  extract(ref: string, path: string, body: AsyncIterable<Buffer>, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void>;
  export(ref: string): Promise<AsyncGenerator<Buffer>>;
  changes(ref: string): Promise<Change[] | null>;
}

export interface Backend {
  system: SystemBackend;
  images: ImagesBackend;
  delta?: DeltaBackend;
  containers: ContainersBackend;
  events: EventBus;
  volumes: VolumesBackend;
  exec: ExecBackend;
  transport: TransportBackend;
  networks: NetworksBackend;
  files: FilesBackend;
}
