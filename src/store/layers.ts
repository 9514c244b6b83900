// The layer store: one directory per layer in overlay2's layout, committed
// as a transaction. `begin` records the intent durably before anything is
// written; `commit` makes the layer visible only after its files are on
// disk; start-up recovery removes whatever an interruption left behind.
//
//   overlay2/<cacheId>/diff          the layer's files
//   overlay2/<cacheId>/tar-split.gz  how to rebuild its tar byte for byte
//   overlay2/<cacheId>/kept/         contents a later entry of the tar overwrote
//   layerdb/<chainId hex>.json       committed layer record
//   layerdb/tmp/<cacheId>            intent: a layer being written
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { errnoCode, NotFound, SystemError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { fsyncDir, writeFileDurable, isDurableTemp } from './durable.js';
import { syncFilesystem } from './syncfs.js';
import { rebuildTar, splitTarSize, TarSplitWriter } from './tarsplit.js';
import { WritebackPacer } from './writeback.js';

export interface LayerRecord {
  chainId: string;
  diffId: string;
  parent: string | null;
  cacheId: string;
  /** Bytes of file content (what `docker images` counts). */
  size: number;
  superseded: Record<string, string>;
}

export interface LayerSplit {
  splitPath: string;
  diffDir: string;
  layerDir: string;
  superseded: Record<string, string>;
}

export interface LayerTx {
  cacheId: string;
  diffDir: string;
  keepDir: string;
  /** Shared by every extraction of this store: bounds dirty page cache. */
  pacer: WritebackPacer;
  split: TarSplitWriter;
  commit(diffId: string, parent: string | null, size: number, superseded: Record<string, string>): Promise<LayerRecord>;
  abort(): Promise<void>;
}

export function chainIdOf(parent: string | null, diffId: string): string {
  if (!parent) return diffId;
  return 'sha256:' + createHash('sha256').update(`${parent} ${diffId}`).digest('hex');
}

function hex(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

export class LayerStore {
  private readonly records = new Map<string, LayerRecord>();
  private readonly overlay: string;
  private readonly db: string;
  private readonly tmp: string;
  private readonly pacer: WritebackPacer;

  private constructor(root: string, private readonly logger: Logger) {
    this.pacer = new WritebackPacer(root);
    this.overlay = join(root, 'overlay2');
    this.db = join(root, 'layerdb');
    this.tmp = join(root, 'layerdb', 'tmp');
  }

  static async open(root: string, logger: Logger): Promise<LayerStore> {
    const s = new LayerStore(root, logger);
    await fs.mkdir(s.overlay, { recursive: true, mode: 0o700 });
    await fs.mkdir(s.tmp, { recursive: true, mode: 0o700 });
    await s.recover();
    return s;
  }

  /**
   * Another data root's layers, read only (`--delta-data-root`): committed
   * records whose files and parents are there; nothing is pruned or written.
   */
  static async openReadOnly(root: string, logger: Logger): Promise<LayerStore> {
    const s = new LayerStore(root, logger);
    await s.loadRecords(async (file, why) => {
      if (why === 'unreadable') logger.warn('skipping an unreadable layer record in the delta data root', { record: file });
    });
    return s;
  }

  /**
   * Loads the committed records whose files are there, then leaves out those
   * whose parent chain is broken. `drop` is told about every file left out:
   * a temp of an interrupted write, an unreadable record, an orphan.
   */
  private async loadRecords(drop: (file: string, why: 'temp' | 'unreadable' | 'orphan') => Promise<void>): Promise<void> {
    for (const name of await fs.readdir(this.db).catch(() => [] as string[])) {
      if (isDurableTemp(name)) {
        await drop(name, 'temp');
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(await fs.readFile(join(this.db, name), 'utf8')) as LayerRecord;
        await fs.access(join(this.overlay, rec.cacheId, 'diff'));
        this.records.set(rec.chainId, rec);
      } catch {
        await drop(name, 'unreadable');
      }
    }
    // A layer whose parent is gone cannot be used either.
    let changed = true;
    while (changed) {
      changed = false;
      for (const rec of this.records.values()) {
        if (rec.parent && !this.records.has(rec.parent)) {
          this.records.delete(rec.chainId);
          await drop(`${hex(rec.chainId)}.json`, 'orphan');
          changed = true;
        }
      }
    }
  }

  /** Start-up recovery: load committed records, prune interrupted and unreferenced layers. */
  private async recover(): Promise<void> {
    await this.loadRecords(async (file, why) => {
      if (why === 'unreadable') this.logger.warn('removing a layer record whose files are missing or unreadable', { record: file });
      await fs.rm(join(this.db, file), { force: true });
    });
    const used = new Set([...this.records.values()].map((r) => r.cacheId));
    let pruned = 0;
    for (const name of await fs.readdir(this.tmp)) {
      if (!used.has(name)) {
        await fs.rm(join(this.overlay, name), { recursive: true, force: true });
        pruned++;
      }
      await fs.rm(join(this.tmp, name), { force: true });
    }
    for (const name of await fs.readdir(this.overlay)) {
      if (name === 'l' || used.has(name)) continue;
      await fs.rm(join(this.overlay, name), { recursive: true, force: true });
      pruned++;
    }
    if (pruned > 0) this.logger.info(`Pruned ${pruned} unfinished or unreferenced layers`);
    const links = join(this.overlay, 'l');
    for (const name of await fs.readdir(links).catch(() => [] as string[])) {
      const target = await fs.readlink(join(links, name)).catch(() => '');
      if (!used.has(target.split('/')[1] ?? '')) await fs.rm(join(links, name), { force: true });
    }
  }

  get(chainId: string): LayerRecord | undefined {
    return this.records.get(chainId);
  }

  list(): LayerRecord[] {
    return [...this.records.values()];
  }

  async begin(): Promise<LayerTx> {
    const cacheId = randomBytes(32).toString('hex');
    // The intent is durable before the directory exists, so a crash at any
    // later point leaves something recovery can find.
    await writeFileDurable(join(this.tmp, cacheId), '');
    const dir = join(this.overlay, cacheId);
    const diffDir = join(dir, 'diff');
    await fs.mkdir(diffDir, { recursive: true, mode: 0o755 });
    const split = new TarSplitWriter(join(dir, 'tar-split.gz'));
    let done = false;
    const abort = async () => {
      if (done) return;
      done = true;
      split.destroy();
      await fs.rm(dir, { recursive: true, force: true });
      await fs.rm(join(this.tmp, cacheId), { force: true });
    };
    return {
      cacheId,
      diffDir,
      keepDir: join(dir, 'kept'),
      pacer: this.pacer,
      split,
      abort,
      commit: async (diffId, parent, size, superseded) => {
        const chainId = chainIdOf(parent, diffId);
        try {
          await split.close();
          await this.pacer.idle();
          await syncFilesystem(diffDir);
          const existing = this.records.get(chainId);
          if (existing) {
            // Someone committed the same layer meanwhile: keep theirs.
            await abort();
            return existing;
          }
          const rec: LayerRecord = { chainId, diffId, parent, cacheId, size, superseded };
          await writeFileDurable(join(this.db, `${hex(chainId)}.json`), JSON.stringify(rec));
          done = true;
          await fs.rm(join(this.tmp, cacheId), { force: true });
          this.records.set(chainId, rec);
          return rec;
        } catch (err) {
          await abort();
          throw err;
        }
      },
    };
  }

  /** Removes a layer nobody uses any more (the caller checks). Record first, then files. */
  async remove(chainId: string): Promise<void> {
    const rec = this.records.get(chainId);
    if (!rec) return;
    this.records.delete(chainId);
    await fs.rm(join(this.db, `${hex(chainId)}.json`), { force: true });
    await fsyncDir(this.db);
    await fs.rm(join(this.overlay, rec.cacheId), { recursive: true, force: true });
  }

  /** The layer's original tar, rebuilt from the files on disk. */
  tar(chainId: string): Readable {
    const l = this.splitOf(chainId);
    return rebuildTar(l.splitPath, l.diffDir, l.superseded, l.layerDir);
  }

  /** The length of the layer's tar (what `tar` yields), without rebuilding it. */
  async tarSize(chainId: string): Promise<number> {
    return splitTarSize(this.splitOf(chainId).splitPath);
  }

  /** Where the layer's tar-split records and files are, for random access to its tar (delta bases). */
  splitOf(chainId: string): LayerSplit {
    const rec = this.records.get(chainId);
    if (!rec) throw new NotFound(`layer ${chainId} not found`);
    const dir = join(this.overlay, rec.cacheId);
    return { splitPath: join(dir, 'tar-split.gz'), diffDir: join(dir, 'diff'), layerDir: dir, superseded: rec.superseded };
  }

  /** Rebuilds the tar and compares its sha256 with the DiffID. */
  async verify(chainId: string): Promise<{ ok: boolean; actual: string }> {
    const rec = this.records.get(chainId);
    if (!rec) throw new NotFound(`layer ${chainId} not found`);
    const h = createHash('sha256');
    try {
      for await (const chunk of this.tar(chainId)) h.update(chunk as Buffer);
    } catch (err) {
      if (errnoCode(err) !== undefined || err instanceof SystemError) return { ok: false, actual: `unreadable: ${(err as Error).message}` };
      throw err;
    }
    const actual = 'sha256:' + h.digest('hex');
    return { ok: actual === rec.diffId, actual };
  }

  /**
   * A short relative name for the layer's diff (`l/<26 chars>` under
   * overlay2/), as Docker makes them, so a mount's lowerdir list of many
   * layers fits in the kernel's one-page option limit.
   */
  async shortLink(chainId: string): Promise<string> {
    const rec = this.records.get(chainId);
    if (!rec) throw new NotFound(`layer ${chainId} not found`);
    const dir = join(this.overlay, rec.cacheId);
    let id: string;
    try {
      id = (await fs.readFile(join(dir, 'link'), 'utf8')).trim();
    } catch {
      id = randomBytes(16).toString('base64url').replace(/[-_]/g, 'x').slice(0, 26).toUpperCase();
      await writeFileDurable(join(dir, 'link'), id);
    }
    const l = join(this.overlay, 'l');
    await fs.mkdir(l, { recursive: true, mode: 0o700 });
    try {
      await fs.symlink(`../${rec.cacheId}/diff`, join(l, id));
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    return `l/${id}`;
  }

  /** The folder short links are relative to. */
  get overlayDir(): string {
    return this.overlay;
  }

  diffDir(chainId: string): string {
    const rec = this.records.get(chainId);
    if (!rec) throw new NotFound(`layer ${chainId} not found`);
    return join(this.overlay, rec.cacheId, 'diff');
  }
}
