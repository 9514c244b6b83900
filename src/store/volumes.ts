// Volumes of the "local" driver, laid out as Docker's: volumes/<name>/_data
// holds the data, volumes/<name>/volume.json skiff's durable record (labels,
// options, creation time). Only this module knows that layout.
//
// Crash safety: a volume is born complete or not at all (built under a
// `.creating-*` name, then renamed into place) and dies by a rename to
// `.removing-*` before its data is deleted; start-up recovery finishes both.
// A directory with data but no record (made by hand, or by an older skiff) is
// adopted rather than deleted: volume data is never thrown away by recovery.
import { randomBytes } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { Conflict, InvalidParameter, NotFound } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { fsyncDir, isDurableTemp, writeFileDurable } from './durable.js';

export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  /** RFC 3339, seconds (Docker's format). */
  CreatedAt: string;
  Labels: Record<string, string> | null;
  /** The driver options as given (null when none were). */
  Options: Record<string, string> | null;
}

/** The Engine API's Volume object. */
export interface VolumeInfo {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
  UsageData?: { Size: number; RefCount: number };
}

export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const RECORD = 'volume.json';
const DATA = '_data';

/** Docker's local-driver option keys. */
const LOCAL_OPTION_KEYS = ['type', 'device', 'o', 'size'];

/**
 * Checks local-driver options. Empty options make a plain directory volume;
 * the only other form skiff implements is Docker's bind-style volume
 * (`type=none,o=bind,device=/abs/path`): the device directory is what the
 * container gets. Everything else (tmpfs, nfs, block devices, size quotas)
 * is refused by name rather than silently ignored.
 */
export function checkLocalOptions(opts: Record<string, string> | null | undefined): void {
  if (!opts || Object.keys(opts).length === 0) return;
  for (const k of Object.keys(opts)) {
    if (!LOCAL_OPTION_KEYS.includes(k)) throw new InvalidParameter(`invalid option: "${k}"`);
    if (typeof opts[k] !== 'string') throw new InvalidParameter(`invalid option: "${k}" must be a string`);
  }
  const unsupported = `only bind-style options are supported by skiff's local volume driver (type=none, o=bind, device=/absolute/path)`;
  if (opts.size !== undefined) throw new InvalidParameter(`volume option size is not supported: ${unsupported}`);
  const type = opts.type ?? '';
  if (type !== '' && type !== 'none') throw new InvalidParameter(`volume option type=${type} is not supported: ${unsupported}`);
  const o = (opts.o ?? '').split(',').filter((x) => x !== '');
  if (!o.includes('bind') && !o.includes('rbind')) throw new InvalidParameter(`volume options without o=bind are not supported: ${unsupported}`);
  const other = o.filter((x) => x !== 'bind' && x !== 'rbind');
  if (other.length > 0) throw new InvalidParameter(`volume mount option ${other.join(',')} is not supported: ${unsupported}`);
  const device = opts.device ?? '';
  if (device === '') throw new InvalidParameter('missing device in volume options');
  if (!posix.isAbsolute(device)) throw new InvalidParameter(`volume option device=${device} must be an absolute path`);
}

/** The bind-style device of a volume, or undefined for a plain one. */
export function bindDevice(rec: VolumeRecord): string | undefined {
  const d = rec.Options?.device;
  return d ? posix.normalize(d) : undefined;
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class VolumeStore {
  private readonly byName = new Map<string, VolumeRecord>();
  private readonly locks = new Map<string, Promise<unknown>>();
  readonly dir: string;

  private constructor(root: string) {
    this.dir = join(root, 'volumes');
  }

  static async open(root: string, logger: Logger): Promise<VolumeStore> {
    const s = new VolumeStore(root);
    await fs.mkdir(s.dir, { recursive: true, mode: 0o701 });
    for (const name of await fs.readdir(s.dir)) {
      const d = join(s.dir, name);
      if (name.startsWith('.creating-') || name.startsWith('.removing-') || isDurableTemp(name)) {
        // A create that never finished, or a remove that did not: neither is a volume.
        await fs.rm(d, { recursive: true, force: true });
        continue;
      }
      let st: Stats;
      try {
        st = await fs.lstat(d);
      } catch {
        continue;
      }
      if (!st.isDirectory() || !VOLUME_NAME.test(name)) {
        logger.warn('ignoring an unexpected entry in the volumes directory', { entry: name });
        continue;
      }
      for (const f of await fs.readdir(d)) if (isDurableTemp(f)) await fs.rm(join(d, f), { force: true });
      try {
        const rec = JSON.parse(await fs.readFile(join(d, RECORD), 'utf8')) as VolumeRecord;
        if (rec.Name !== name) throw new Error('record does not match its directory');
        s.byName.set(name, rec);
      } catch (err) {
        const rec: VolumeRecord = { Name: name, Driver: 'local', CreatedAt: rfc3339(st.mtime), Labels: null, Options: null };
        logger.warn('adopting a volume directory without a valid record', { volume: name, reason: (err as Error).message });
        await fs.mkdir(join(d, DATA), { recursive: true, mode: 0o755 });
        await writeFileDurable(join(d, RECORD), JSON.stringify(rec), 0o600);
        s.byName.set(name, rec);
      }
    }
    return s;
  }

  /** Runs fn with the name locked against concurrent create/remove of the same volume. */
  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(name, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    }
  }

  newName(): string {
    for (;;) {
      const n = randomBytes(32).toString('hex');
      if (!this.byName.has(n)) return n;
    }
  }

  get(name: string): VolumeRecord | undefined {
    return this.byName.get(name);
  }

  mustGet(name: string): VolumeRecord {
    const v = this.byName.get(name);
    if (!v) throw new NotFound(`get ${name}: no such volume`);
    return v;
  }

  list(): VolumeRecord[] {
    return [...this.byName.values()];
  }

  /** volumes/<name>/_data, what Docker reports as Mountpoint. */
  mountpoint(name: string): string {
    return join(this.dir, name, DATA);
  }

  /** Where the volume's files really are: the device of a bind-style volume, else the mountpoint. */
  dataPath(rec: VolumeRecord): string {
    return bindDevice(rec) ?? this.mountpoint(rec.Name);
  }

  info(rec: VolumeRecord): VolumeInfo {
    return {
      CreatedAt: rec.CreatedAt,
      Driver: rec.Driver,
      Labels: rec.Labels,
      Mountpoint: this.mountpoint(rec.Name),
      Name: rec.Name,
      Options: rec.Options,
      Scope: 'local',
    };
  }

  /**
   * Creates a volume, or returns the existing one of that name (Docker's
   * behaviour: labels and options of a second create are ignored). Callers
   * hold the name's lock.
   */
  async create(
    name: string,
    opts: { labels?: Record<string, string> | null; options?: Record<string, string> | null } = {},
  ): Promise<{ volume: VolumeRecord; created: boolean }> {
    if (!VOLUME_NAME.test(name)) {
      throw new InvalidParameter(
        `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    }
    const existing = this.byName.get(name);
    if (existing) return { volume: existing, created: false };
    checkLocalOptions(opts.options);
    const rec: VolumeRecord = {
      Name: name,
      Driver: 'local',
      CreatedAt: rfc3339(new Date()),
      Labels: opts.labels ?? null,
      Options: opts.options ?? null,
    };
    const tmp = join(this.dir, `.creating-${name}-${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(join(tmp, DATA), { recursive: true, mode: 0o755 });
      await fs.chmod(tmp, 0o755);
      await fs.chmod(join(tmp, DATA), 0o755);
      await writeFileDurable(join(tmp, RECORD), JSON.stringify(rec), 0o600);
      await fsyncDir(join(tmp, DATA));
      await fs.rename(tmp, join(this.dir, name));
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new Conflict(`create ${name}: a directory of that name is already in ${this.dir}`);
      }
      throw err;
    }
    await fsyncDir(this.dir);
    this.byName.set(name, rec);
    return { volume: rec, created: true };
  }

  /**
   * Deletes a volume and its data (never a bind-style volume's device).
   * In-use checks are the caller's; callers hold the name's lock.
   */
  async remove(name: string): Promise<void> {
    if (!this.byName.has(name)) throw new NotFound(`get ${name}: no such volume`);
    const doomed = join(this.dir, `.removing-${name}-${randomBytes(6).toString('hex')}`);
    await fs.rename(join(this.dir, name), doomed);
    this.byName.delete(name);
    await fsyncDir(this.dir);
    await fs.rm(doomed, { recursive: true, force: true });
  }

  /** Bytes used (moby's directory.Size: non-directories, hard links once); -1 when it cannot be read. */
  async size(rec: VolumeRecord): Promise<number> {
    try {
      return await treeSize(this.dataPath(rec));
    } catch {
      return -1;
    }
  }
}

async function treeSize(root: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (err) {
      if (dir === root) throw err;
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      let st: Stats;
      try {
        st = await fs.lstat(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        await walk(p);
        continue;
      }
      if (st.size === 0) continue;
      const key = `${st.dev}:${st.ino}`;
      if (st.nlink > 1) {
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.size;
    }
  };
  await walk(root);
  return total;
}
