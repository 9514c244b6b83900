// A container's volumes and bind mounts, as Docker handles them:
//  - at create, every named volume is found or created on demand, every
//    anonymous one (`-v /path`, image VOLUME, `--mount type=volume` without a
//    source) gets a new volume with a random name, and all are recorded on
//    the container (MountPoints);
//  - at the first start, a volume that is still empty and mounted over a
//    directory of the image is seeded with that directory (unless nocopy);
//  - at remove with -v (or --rm), the anonymous volumes go too.
import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { InvalidParameter, SystemError } from '../errors.js';
import { parseBind, parseMountSpec, type ContainerConfig, type HostConfig } from '../exec/spec.js';
import type { ContainerRecord, MountPointRecord } from '../store/containers.js';
import { copyTree } from '../store/copytree.js';
import { hostPath, resolve, type ContainerFs } from './archive.js';
import { bindDevice } from '../store/volumes.js';
import type { VolumeService } from '../volumes/service.js';

interface Planned {
  mp: MountPointRecord;
  labels?: Record<string, string> | null;
  options?: Record<string, string> | null;
}

function cleanTarget(dest: string): string {
  return posix.normalize(dest).replace(/(.)\/+$/, '$1');
}

/** The mounts of a create request, in Docker's MountPoint form (volumes not yet named when anonymous). */
function plan(config: ContainerConfig, hc: HostConfig): Planned[] {
  const out: Planned[] = [];
  for (const spec of hc.Binds ?? []) {
    const m = parseBind(spec);
    const mode = spec.split(':')[2] ?? '';
    if (m.type === 'bind') {
      out.push({ mp: { Type: 'bind', Source: m.source, Destination: m.destination, RW: !m.readOnly, Mode: mode, Propagation: m.propagation } });
    } else {
      // moby's setBindModeIfNull: a -v volume without a mode reports "z".
      out.push({
        mp: { Type: 'volume', Name: m.source, Source: '', Destination: m.destination, RW: !m.readOnly, Mode: mode || 'z', Propagation: '', Anonymous: m.source === '', CopyData: !m.noCopy },
      });
    }
  }
  for (const ms of hc.Mounts ?? []) {
    const m = parseMountSpec(ms);
    if (m.type === 'bind') out.push({ mp: { Type: 'bind', Source: m.source, Destination: m.destination, RW: !m.readOnly, Mode: '', Propagation: m.propagation } });
    else if (m.type === 'tmpfs') out.push({ mp: { Type: 'tmpfs', Source: '', Destination: m.destination, RW: !m.readOnly, Mode: '', Propagation: '' } });
    else {
      out.push({
        mp: { Type: 'volume', Name: m.source, Source: '', Destination: m.destination, RW: !m.readOnly, Mode: '', Propagation: '', Anonymous: m.source === '', CopyData: !m.noCopy },
        labels: ms.VolumeOptions?.Labels ?? null,
        options: ms.VolumeOptions?.DriverConfig?.Options ?? null,
      });
    }
  }
  const taken = new Set<string>();
  for (const p of out) {
    if (taken.has(p.mp.Destination)) throw new InvalidParameter(`Duplicate mount point: ${p.mp.Destination}`);
    taken.add(p.mp.Destination);
  }
  for (const d of Object.keys(hc.Tmpfs ?? {})) taken.add(cleanTarget(d));
  for (const dest of Object.keys(config.Volumes ?? {})) {
    if (!dest.startsWith('/')) throw new InvalidParameter(`invalid mount config: mount path must be absolute: "${dest}"`);
    const d = cleanTarget(dest);
    if (d === '/') throw new InvalidParameter(`invalid specification: destination can't be '/' in '${dest}'`);
    if (taken.has(d)) continue;
    taken.add(d);
    out.push({ mp: { Type: 'volume', Name: '', Source: '', Destination: d, RW: true, Mode: '', Propagation: '', Anonymous: true, CopyData: true } });
  }
  return out;
}

/**
 * At create: finds or creates every volume the container names and returns its
 * MountPoints. The container holds pending references until `volumes.settle(id)`;
 * on failure, the anonymous volumes made here are removed again.
 */
export async function createMountPoints(volumes: VolumeService, id: string, config: ContainerConfig, hc: HostConfig): Promise<MountPointRecord[]> {
  const planned = plan(config, hc);
  const made: string[] = [];
  try {
    for (const p of planned) {
      if (p.mp.Type !== 'volume') continue;
      const name = p.mp.Name || volumes.store.newName();
      const { created } = await volumes.acquire(name, id, { labels: p.labels ?? null, options: p.options ?? null });
      if (created && p.mp.Anonymous) made.push(name);
      p.mp.Name = name;
    }
  } catch (err) {
    volumes.settle(id);
    for (const n of made) await volumes.removeIfUnused(n).catch(() => false);
    throw err;
  }
  return planned.map((p) => p.mp);
}

/** After a failed create (the record was never saved): drop what createMountPoints took. */
export async function abandonMountPoints(volumes: VolumeService, id: string, mps: MountPointRecord[]): Promise<void> {
  volumes.settle(id);
  for (const mp of mps) if (mp.Type === 'volume' && mp.Anonymous && mp.Name) await volumes.removeIfUnused(mp.Name).catch(() => false);
}

async function isEmptyDir(p: string): Promise<boolean> {
  return (await fs.readdir(p)).length === 0;
}

/**
 * At start, with the root filesystem mounted at `rootfs`: the host directory
 * of every volume (buildSpec's `volumes`), seeding new empty volumes from the
 * image on the first start. Returns whether the record changed (CopyData
 * cleared) and must be saved.
 */
export async function resolveVolumes(
  volumes: VolumeService,
  c: ContainerRecord,
  rootfs: string,
): Promise<{ volumes: Array<{ source: string; destination: string; readOnly: boolean }>; changed: boolean }> {
  const out: Array<{ source: string; destination: string; readOnly: boolean }> = [];
  let changed = false;
  for (const mp of c.MountPoints ?? []) {
    if (mp.Type !== 'volume' || !mp.Name) continue;
    const name = mp.Name;
    // Removed behind skiff's back (by hand): make it again rather than fail forever.
    const rec = volumes.store.get(name) ?? (await volumes.store.withLock(name, () => volumes.store.create(name))).volume;
    const device = bindDevice(rec);
    const source = volumes.store.dataPath(rec);
    if (device) {
      const st = await fs.stat(device).catch(() => undefined);
      if (!st) {
        throw new SystemError(
          `error while mounting volume '${volumes.store.mountpoint(name)}': failed to mount local volume: mount ${device}:${volumes.store.mountpoint(name)}, flags: 0x1000: no such file or directory`,
        );
      }
    }
    if (mp.CopyData) {
      // Where the container will see it: symlinks followed, never out of the root.
      const image: ContainerFs = { root: rootfs, mounts: [], readonlyRootfs: false, allowed: [] };
      const from = hostPath(image, await resolve(image, mp.Destination, true));
      const st = await fs.stat(from).catch(() => undefined);
      if (st?.isDirectory() && (await isEmptyDir(source))) {
        try {
          await copyTree(from, source);
        } catch (err) {
          throw new SystemError(`copying the image's ${mp.Destination} into volume ${name}: ${(err as Error).message}`);
        }
      }
      mp.CopyData = false;
      changed = true;
    }
    out.push({ source, destination: mp.Destination, readOnly: !mp.RW });
    volumes.publishMount(name, c.Id, mp.Destination, mp.RW);
  }
  return { volumes: out, changed };
}

/** Inspect's and ps's `Mounts`. */
export function mountsOf(volumes: VolumeService | undefined, c: ContainerRecord): Array<Record<string, unknown>> {
  return (c.MountPoints ?? []).map((mp) => {
    if (mp.Type === 'volume') {
      return {
        Type: 'volume',
        Name: mp.Name,
        Source: volumes ? volumes.store.mountpoint(mp.Name ?? '') : '',
        Destination: mp.Destination,
        Driver: 'local',
        Mode: mp.Mode,
        RW: mp.RW,
        Propagation: '',
      };
    }
    return { Type: mp.Type, Source: mp.Source, Destination: mp.Destination, Mode: mp.Mode, RW: mp.RW, Propagation: mp.Propagation };
  });
}

/** After the container's record is gone: with `removeAnonymous` (rm -v, --rm), its anonymous volumes go too. */
export async function releaseMountPoints(volumes: VolumeService, c: ContainerRecord, removeAnonymous: boolean): Promise<void> {
  if (!removeAnonymous) return;
  for (const mp of c.MountPoints ?? []) {
    // A volume another container also uses stays (moby ignores "in use" here too).
    if (mp.Type === 'volume' && mp.Anonymous && mp.Name) await volumes.removeIfUnused(mp.Name);
  }
}
