// `docker diff`: what a container changed, read from its overlay upper dir
// the way moby's OverlayChanges does (pkg/archive/changes.go at v20.10):
// a whiteout (0/0 character device) or an opaque directory is a deletion,
// anything else is an addition unless a lower layer has the path, then a
// modification (a directory only if its size, mode or mtime differ); the
// parent of an addition or deletion is reported modified once.
//
// Docker hides the files its init layer makes (/etc/hosts, /proc, /dev...);
// skiff has no init layer, the runtime creates those mount points in the
// upper dir, so they and directories holding nothing else are left out too.
import { promises as fs, type BigIntStats } from 'node:fs';
import { posix } from 'node:path';
import { opaqueDirs } from '../store/special.js';

export interface Change {
  Path: string;
  /** 0 modified, 1 added, 2 deleted. */
  Kind: 0 | 1 | 2;
}

/** What Docker's init layer holds (daemon/initlayer): never a change of the container's own. */
const INIT_PATHS = new Set(['/dev/pts', '/dev/shm', '/proc', '/sys', '/.dockerenv', '/etc/resolv.conf', '/etc/hosts', '/etc/hostname', '/dev/console', '/etc/mtab']);
/** Their parents, which the init layer has as directories. */
const INIT_DIRS = new Set(['/dev', '/etc']);

interface Item {
  path: string;
  st: BigIntStats;
}

async function walk(upper: string): Promise<Item[]> {
  const out: Item[] = [];
  const visit = async (rel: string) => {
    const names = (await fs.readdir(posix.join(upper, rel)).catch(() => [] as string[])).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const n of names) {
      const path = posix.join(rel, n);
      const st = await fs.lstat(posix.join(upper, path), { bigint: true }).catch(() => undefined);
      if (!st) continue;
      out.push({ path, st });
      if (st.isDirectory()) await visit(path);
    }
  };
  await visit('/');
  return out;
}

/** Paths that are only the runtime's mount points (and directories holding nothing else). */
function initOnly(items: Item[]): Set<string> {
  const children = new Map<string, string[]>();
  for (const it of items) {
    const parent = posix.dirname(it.path);
    const list = children.get(parent) ?? [];
    list.push(it.path);
    children.set(parent, list);
  }
  const out = new Set<string>();
  for (const it of [...items].reverse()) {
    const kids = children.get(it.path) ?? [];
    if (!(INIT_PATHS.has(it.path) || INIT_DIRS.has(it.path))) continue;
    if (it.st.isCharacterDevice() && it.st.rdev === 0n) continue; // a deletion is a change
    if (kids.every((k) => out.has(k))) out.add(it.path);
  }
  return out;
}

function sameFsTime(a: bigint, b: bigint): boolean {
  return a === b || (a / 1_000_000_000n === b / 1_000_000_000n && (a % 1_000_000_000n === 0n || b % 1_000_000_000n === 0n));
}

/** The changes of the upper dir `upper` over `lowers` (top first); null when there are none, as Docker answers. */
export async function overlayChanges(upper: string, lowers: string[]): Promise<Change[] | null> {
  const items = await walk(upper);
  const skip = initOnly(items);
  const opaque = await opaqueDirs(upper);
  const changes: Change[] = [];
  const changedDirs = new Set<string>();
  for (const { path, st } of items) {
    if (skip.has(path)) continue;
    let kind: Change['Kind'];
    const deleted = (st.isCharacterDevice() && st.rdev === 0n) || (st.isDirectory() && opaque.has(posix.join(upper, path)));
    if (deleted) kind = 2;
    else {
      kind = 1;
      let lower: BigIntStats | undefined;
      for (const l of lowers) {
        lower = await fs.lstat(posix.join(l, path), { bigint: true }).catch(() => undefined);
        if (lower) break;
      }
      if (lower) {
        // A directory that is only there as the parent of a change is not one itself.
        if (lower.isDirectory() && st.isDirectory() && lower.size === st.size && lower.mode === st.mode && sameFsTime(lower.mtimeNs, st.mtimeNs)) continue;
        kind = 0;
      } else if (INIT_DIRS.has(path) && st.isDirectory()) kind = 0;
    }
    if (st.isDirectory()) changedDirs.add(path);
    if (kind === 1 || kind === 2) {
      const parent = posix.dirname(path);
      if (!changedDirs.has(parent) && parent !== '/') {
        changes.push({ Path: parent, Kind: 0 });
        changedDirs.add(parent);
      }
    }
    changes.push({ Path: path, Kind: kind });
  }
  return changes.length ? changes : null;
}
