// The volume service: Docker's volume API over the volume store, with the
// references containers hold (a volume a container names, running or not,
// is in use and cannot be removed or pruned).
import { Conflict, InvalidParameter, NotFound } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import { bindDevice, type VolumeInfo, type VolumeRecord, VolumeStore } from '../store/volumes.js';
import { labelMatches } from '../filters.js';

export type VolumeFilters = Map<string, string[]>;

export interface CreateVolumeOptions {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

const LIST_FILTERS = ['name', 'driver', 'label', 'dangling'];
const PRUNE_FILTERS = ['label', 'label!', 'all'];

function checkDriver(driver: string | undefined): void {
  if (driver !== undefined && driver !== '' && driver !== 'local') {
    throw new NotFound(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
  }
}

function checkStringMap(v: unknown, what: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new InvalidParameter(`invalid ${what}: expected an object of strings`);
  }
  return { ...(v as Record<string, string>) };
}

export class VolumeService {
  /** Containers being created that already hold a volume (their record is not saved yet). */
  private readonly pending = new Map<string, Set<string>>();
  private users: (name: string) => string[] = () => [];

  constructor(
    readonly store: VolumeStore,
    private readonly events?: EventBus,
  ) {}

  /** Who references a volume: the daemon wires this to the container records. */
  setUsers(fn: (name: string) => string[]): void {
    this.users = fn;
  }

  /** IDs of the containers holding the volume. */
  refs(name: string): string[] {
    return [...new Set([...this.users(name), ...(this.pending.get(name) ?? [])])];
  }

  private publish(action: string, name: string, extra: Record<string, string> = {}): void {
    this.events?.publish('volume', action, name, { driver: 'local', ...extra });
  }

  // ---- API ------------------------------------------------------------------

  async create(o: CreateVolumeOptions): Promise<VolumeInfo> {
    checkDriver(o.Driver);
    const labels = checkStringMap(o.Labels, 'Labels');
    const options = checkStringMap(o.DriverOpts, 'DriverOpts');
    if (o.Name !== undefined && typeof o.Name !== 'string') throw new InvalidParameter('invalid Name: expected a string');
    const name = o.Name || this.store.newName();
    const { volume } = await this.store.withLock(name, async () => {
      const r = await this.store.create(name, { labels, options });
      if (r.created) this.publish('create', name);
      return r;
    });
    return this.store.info(volume);
  }

  inspect(name: string): VolumeInfo {
    return this.store.info(this.store.mustGet(name));
  }

  list(filters: VolumeFilters): { Volumes: VolumeInfo[]; Warnings: string[] | null } {
    for (const k of filters.keys()) if (!LIST_FILTERS.includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    let dangling: boolean | undefined;
    const d = filters.get('dangling') ?? [];
    if (d.length > 0) {
      if (d.some((v) => v === 'true' || v === '1')) dangling = true;
      else if (d.some((v) => v === 'false' || v === '0')) dangling = false;
      else throw new InvalidParameter(`invalid filter 'dangling=[${d.join(' ')}]'`);
    }
    const names = filters.get('name') ?? [];
    const drivers = filters.get('driver') ?? [];
    const labels = filters.get('label') ?? [];
    const out = this.store
      .list()
      .filter((v) => {
        if (names.length > 0 && !names.some((n) => v.Name.includes(n))) return false;
        if (drivers.length > 0 && !drivers.includes(v.Driver)) return false;
        if (!labels.every((l) => labelMatches(v.Labels, l))) return false;
        if (dangling !== undefined && (this.refs(v.Name).length === 0) !== dangling) return false;
        return true;
      })
      .sort((a, b) => a.Name.localeCompare(b.Name))
      .map((v) => this.store.info(v));
    return { Volumes: out, Warnings: null };
  }

  /** DELETE /volumes/{name}: in use is a 409 even with force (as in moby); force makes a missing volume a success. */
  async remove(name: string, force: boolean): Promise<void> {
    await this.store.withLock(name, async () => {
      if (!this.store.get(name)) {
        if (force) return;
        throw new NotFound(`get ${name}: no such volume`);
      }
      const refs = this.refs(name);
      if (refs.length > 0) throw new Conflict(`remove ${name}: volume is in use - [${refs.join(', ')}]`);
      await this.store.remove(name);
      this.publish('destroy', name);
    });
  }

  /** API 1.41: every unused local volume, named or anonymous. */
  async prune(filters: VolumeFilters): Promise<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }> {
    for (const k of filters.keys()) if (!PRUNE_FILTERS.includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    const want = filters.get('label') ?? [];
    const notWant = filters.get('label!') ?? [];
    let deleted: string[] | null = null;
    let reclaimed = 0;
    for (const v of this.store.list()) {
      if (!want.every((l) => labelMatches(v.Labels, l))) continue;
      if (notWant.some((l) => labelMatches(v.Labels, l))) continue;
      await this.store.withLock(v.Name, async () => {
        if (!this.store.get(v.Name) || this.refs(v.Name).length > 0) return;
        const size = bindDevice(v) ? 0 : await this.store.size(v);
        await this.store.remove(v.Name);
        this.publish('destroy', v.Name);
        (deleted ??= []).push(v.Name);
        reclaimed += Math.max(0, size);
      });
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** The Volumes of GET /system/df. */
  async diskUsage(): Promise<VolumeInfo[]> {
    const out: VolumeInfo[] = [];
    for (const v of this.store.list().sort((a, b) => a.Name.localeCompare(b.Name))) {
      out.push({ ...this.store.info(v), UsageData: { Size: await this.store.size(v), RefCount: this.refs(v.Name).length } });
    }
    return out;
  }

  // ---- for containers ----------------------------------------------------------

  /**
   * Finds or creates (on demand, like `docker run -v name:/path`) a volume and
   * records a pending reference from a container being created, so a
   * concurrent `volume rm` cannot take it before the container is saved.
   */
  async acquire(
    name: string,
    containerId: string,
    opts: { labels?: Record<string, string> | null; options?: Record<string, string> | null } = {},
  ): Promise<{ volume: VolumeRecord; created: boolean }> {
    return this.store.withLock(name, async () => {
      const r = await this.store.create(name, opts);
      if (r.created) this.publish('create', name);
      let set = this.pending.get(name);
      if (!set) this.pending.set(name, (set = new Set()));
      set.add(containerId);
      return r;
    });
  }

  /** Drops the pending references of a container (its record is saved, or its create failed). */
  settle(containerId: string): void {
    for (const [name, set] of this.pending) {
      set.delete(containerId);
      if (set.size === 0) this.pending.delete(name);
    }
  }

  /** Removes a volume unless something else still uses it (rm -v, --rm, a failed create). */
  async removeIfUnused(name: string): Promise<boolean> {
    return this.store.withLock(name, async () => {
      if (!this.store.get(name) || this.refs(name).length > 0) return false;
      await this.store.remove(name);
      this.publish('destroy', name);
      return true;
    });
  }

  publishMount(name: string, containerId: string, destination: string, rw: boolean): void {
    this.publish('mount', name, { container: containerId, destination, propagation: '', 'read/write': String(rw) });
  }
}
