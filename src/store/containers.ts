// Container records: one directory per container under containers/, holding
// its durable record (config.json), its writable layer (rootfs/upper, work,
// merged), its bundle and its logs. Only this module knows that layout.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Conflict, InvalidParameter, NotFound } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isDurableTemp, writeFileDurable, fsyncDir } from './durable.js';
import { unmount } from './mount.js';

export interface ContainerState {
  Status: 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** Present when the image or the container defines a health check. */
  Health?: HealthState;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function initialState(): ContainerState {
  return {
    Status: 'created',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

/** What skiff keeps about a container; the API's inspect shape is built from it. */
export interface ContainerRecord {
  Id: string;
  /** With the leading slash, as Docker stores it. */
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  /** The image ID. */
  Image: string;
  State: ContainerState;
  RestartCount: number;
  /** The container's Config as Docker returns it (image defaults merged in). */
  Config: Record<string, unknown>;
  HostConfig: Record<string, unknown>;
  /** The monitor process (sh) supervising the runtime, while running. */
  MonitorPid: number;
  /** Set by `docker stop`/`kill` so restart policies know the stop was asked for. */
  ManuallyStopped: boolean;
  /** Volumes and bind mounts, resolved at create (Docker's MountPoints); absent in records that have none. */
  MountPoints?: MountPointRecord[];
}

/** One mount of a container, as recorded at create. */
export interface MountPointRecord {
  Type: 'volume' | 'bind' | 'tmpfs';
  /** The volume's name (Type volume). */
  Name?: string;
  /** Host path of a bind mount; '' otherwise (a volume's is its mountpoint). */
  Source: string;
  Destination: string;
  RW: boolean;
  /** The mode as given (`ro`, `z`, ...), as Docker reports it. */
  Mode: string;
  Propagation: string;
  /** `-v /path`, an image VOLUME, `--mount type=volume` without source: rm -v and --rm remove it. */
  Anonymous?: boolean;
  /** Seed the volume from the image at the first start (cleared once done). */
  CopyData?: boolean;
}

export interface ContainerPaths {
  dir: string;
  upper: string;
  work: string;
  merged: string;
  bundle: string;
  hostsPath: string;
  hostnamePath: string;
  resolvPath: string;
  logPath: string;
}

export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly dir: string;

  private constructor(root: string) {
    this.dir = join(root, 'containers');
  }

  static async open(root: string, logger: Logger): Promise<ContainerStore> {
    const s = new ContainerStore(root);
    await fs.mkdir(s.dir, { recursive: true, mode: 0o710 });
    for (const id of await fs.readdir(s.dir)) {
      const d = join(s.dir, id);
      try {
        for (const f of await fs.readdir(d)) if (isDurableTemp(f)) await fs.rm(join(d, f), { force: true });
        const rec = JSON.parse(await fs.readFile(join(d, 'config.json'), 'utf8')) as ContainerRecord;
        if (rec.Id !== id) throw new Error('record does not match its directory');
        s.byId.set(id, rec);
      } catch (err) {
        // A container whose record never became durable was never created.
        logger.warn('removing an incomplete container directory', { container: id, reason: (err as Error).message });
        await unmount(join(d, 'rootfs', 'merged')).catch(() => undefined);
        await fs.rm(d, { recursive: true, force: true });
      }
    }
    return s;
  }

  newId(): string {
    for (;;) {
      const id = randomBytes(32).toString('hex');
      if (!this.byId.has(id)) return id;
    }
  }

  paths(id: string): ContainerPaths {
    const dir = join(this.dir, id);
    return {
      dir,
      upper: join(dir, 'rootfs', 'upper'),
      work: join(dir, 'rootfs', 'work'),
      merged: join(dir, 'rootfs', 'merged'),
      bundle: join(dir, 'bundle'),
      hostsPath: join(dir, 'hosts'),
      hostnamePath: join(dir, 'hostname'),
      resolvPath: join(dir, 'resolv.conf'),
      logPath: join(dir, `${id}-json.log`),
    };
  }

  /** Full ID, name (with or without '/'), or a unique ID prefix. */
  find(ref: string): ContainerRecord | undefined {
    const full = this.byId.get(ref);
    if (full) return full;
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    for (const c of this.byId.values()) if (c.Name === name) return c;
    if (/^[0-9a-f]+$/.test(ref)) {
      const matches = [...this.byId.values()].filter((c) => c.Id.startsWith(ref));
      if (matches.length > 1) throw new InvalidParameter(`multiple IDs found with provided prefix: ${ref}`);
      return matches[0];
    }
    return undefined;
  }

  get(ref: string): ContainerRecord {
    const c = this.find(ref);
    if (!c) throw new NotFound(`No such container: ${ref}`);
    return c;
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  nameInUse(name: string): ContainerRecord | undefined {
    const n = name.startsWith('/') ? name : `/${name}`;
    return [...this.byId.values()].find((c) => c.Name === n);
  }

  async create(rec: ContainerRecord): Promise<void> {
    const other = this.nameInUse(rec.Name);
    if (other) {
      throw new Conflict(
        `Conflict. The container name "${rec.Name}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    const p = this.paths(rec.Id);
    for (const d of [p.work, p.merged, p.bundle]) await fs.mkdir(d, { recursive: true, mode: 0o700 });
    // The merged root takes the upper dir's mode: it must be 0755 for non-root users.
    await fs.mkdir(p.upper, { recursive: true, mode: 0o755 });
    await fs.chmod(p.upper, 0o755);
    this.byId.set(rec.Id, rec);
    await this.save(rec);
  }

  async save(rec: ContainerRecord): Promise<void> {
    await writeFileDurable(join(this.paths(rec.Id).dir, 'config.json'), JSON.stringify(rec), 0o600);
  }

  async remove(id: string): Promise<void> {
    const p = this.paths(id);
    await unmount(p.merged).catch(() => undefined);
    this.byId.delete(id);
    // The record goes first: a crash half-way leaves a directory recovery removes.
    await fs.rm(join(p.dir, 'config.json'), { force: true });
    await fsyncDir(p.dir).catch(() => undefined);
    await fs.rm(p.dir, { recursive: true, force: true });
  }
}
