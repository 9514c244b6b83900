// Which compressed blob belongs to which layer, and where it is: for each
// DiffID, the blob digests (and sizes) seen on pull or made on push, with the
// registry and repositories known to hold them. Push asks it to skip blobs a
// repository has, or to mount them from a sibling repository.
//
//   distribution.json   {"<diffId>": [{"digest", "size", "registry", "repos": [...]}]}
//
// Recovery: it is a cache. A file that does not parse is dropped (pushes then
// upload again, with the same deterministic digests); entries for layers no
// longer stored are pruned at start.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { writeFileDurable } from './durable.js';

export interface BlobLocation {
  digest: string;
  size: number;
  registry: string;
  repos: string[];
}

export class DistributionStore {
  private readonly byDiffId = new Map<string, BlobLocation[]>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string) {}

  static async open(root: string, knownDiffIds: Set<string>, logger: Logger): Promise<DistributionStore> {
    const s = new DistributionStore(join(root, 'distribution.json'));
    try {
      const data = JSON.parse(await fs.readFile(s.file, 'utf8')) as Record<string, BlobLocation[]>;
      for (const [diffId, locs] of Object.entries(data)) {
        if (!knownDiffIds.has(diffId) || !Array.isArray(locs)) continue;
        const ok = locs.filter((l) => typeof l?.digest === 'string' && typeof l.registry === 'string' && Number.isSafeInteger(l.size) && Array.isArray(l.repos));
        if (ok.length) s.byDiffId.set(diffId, ok);
      }
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') logger.warn('dropping unreadable blob location cache', { file: s.file, reason: (err as Error).message });
    }
    return s;
  }

  /** Known blobs of a layer on one registry. */
  get(diffId: string, registry: string): BlobLocation[] {
    return (this.byDiffId.get(diffId) ?? []).filter((l) => l.registry === registry);
  }

  async add(entries: Array<{ diffId: string; digest: string; size: number; registry: string; repo: string }>): Promise<void> {
    let changed = false;
    for (const e of entries) {
      const locs = this.byDiffId.get(e.diffId) ?? [];
      let loc = locs.find((l) => l.digest === e.digest && l.registry === e.registry);
      if (!loc) {
        loc = { digest: e.digest, size: e.size, registry: e.registry, repos: [] };
        locs.push(loc);
        this.byDiffId.set(e.diffId, locs);
        changed = true;
      }
      if (!loc.repos.includes(e.repo)) {
        loc.repos.push(e.repo);
        changed = true;
      }
    }
    if (changed) await this.save();
  }

  /** The registry no longer has this blob in this repository. */
  async forget(diffId: string, digest: string, registry: string, repo: string): Promise<void> {
    const loc = this.get(diffId, registry).find((l) => l.digest === digest);
    if (!loc || !loc.repos.includes(repo)) return;
    loc.repos = loc.repos.filter((r) => r !== repo);
    await this.save();
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(Object.fromEntries(this.byDiffId));
    this.writing = this.writing.catch(() => undefined).then(() => writeFileDurable(this.file, snapshot, 0o600));
    return this.writing;
  }
}
