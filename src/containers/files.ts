// A container's files through the API: `docker cp` (archive HEAD/GET/PUT),
// `docker export` and `docker diff`, with moby's errors (a missing path is
// "Could not find the file <path> in container <name>", 404; the rest of
// what goes wrong is a 500, as in API 1.41).
import { readFileSync } from 'node:fs';
import { errnoCode, messageOf, NotFound, SkiffError, SystemError } from '../errors.js';
import { resolveUser } from '../exec/user.js';
import type { ContainerRecord } from '../store/containers.js';
import { archivePath, containerFs, exportTree, extractToDir, hostPath, resolve, statPath, type ContainerFs, type FsMount, type PathStat } from './archive.js';
import { overlayChanges, type Change } from './changes.js';

/** A container's files, opened by the container service (containers/service.ts openFiles). */
export interface OpenFiles {
  c: ContainerRecord;
  /** The mounted root filesystem. */
  root: string;
  mounts: FsMount[];
  readonlyRootfs: boolean;
  /** Unmounts what was mounted for this access; call once done (again is harmless). */
  release(): Promise<void>;
}

export interface FilesHost {
  openFiles(ref: string): Promise<OpenFiles>;
  /** The container's own layer and the image's (absolute, top first): what `docker diff` compares, nothing mounted. */
  layerDirs(ref: string): Promise<{ upper: string; lowers: string[] }>;
  publish(c: ContainerRecord, action: string, extra?: Record<string, string>): void;
}

export type { PathStat, Change };

export class ContainerFiles {
  constructor(private readonly host: FilesHost) {}

  /** Opens the files, runs fn, and releases them unless fn hands the release on (`keep`). */
  private async with<T>(ref: string, path: string, fn: (o: OpenFiles, v: ContainerFs) => Promise<T>, keep = false): Promise<T> {
    const o = await this.host.openFiles(ref);
    let handedOn = false;
    try {
      const v = await containerFs(o.root, o.mounts, o.readonlyRootfs);
      const r = await fn(o, v);
      handedOn = keep;
      return r;
    } catch (err) {
      throw fileError(err, path, ref);
    } finally {
      if (!handedOn) await o.release();
    }
  }

  /** HEAD /containers/{id}/archive */
  stat(ref: string, path: string): Promise<PathStat> {
    return this.with(ref, path, (_o, v) => statPath(v, path));
  }

  /** GET /containers/{id}/archive: the tar is streamed; the files stay open until it ends or is dropped. */
  async archive(ref: string, path: string): Promise<{ stat: PathStat; tar: AsyncGenerator<Buffer> }> {
    let opened: OpenFiles | undefined;
    const r = await this.with(
      ref,
      path,
      async (o, v) => {
        opened = o;
        return archivePath(v, path);
      },
      true,
    );
    const o = opened as OpenFiles;
    this.host.publish(o.c, 'archive-path');
    return { stat: r.stat, tar: released(r.tar, o.release, path, ref) };
  }

  /** PUT /containers/{id}/archive */
  async extract(ref: string, path: string, body: AsyncIterable<Buffer>, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
    await this.with(ref, path, async (o, v) => {
      const chown = opts.copyUIDGID ? await containerUser(o, v) : undefined;
      await extractToDir(v, path, body, { noOverwriteDirNonDir: opts.noOverwriteDirNonDir, ...(chown ? { chown } : {}) });
      this.host.publish(o.c, 'extract-to-dir');
    });
  }

  /** GET /containers/{id}/export: the root filesystem without the container's mounts. */
  async export(ref: string): Promise<AsyncGenerator<Buffer>> {
    const o = await this.host.openFiles(ref);
    this.host.publish(o.c, 'export');
    return released(exportTree(o.root), o.release, '/', ref);
  }

  /** GET /containers/{id}/changes */
  async changes(ref: string): Promise<Change[] | null> {
    const { upper, lowers } = await this.host.layerDirs(ref);
    try {
      return await overlayChanges(upper, lowers);
    } catch (err) {
      throw err instanceof SkiffError ? err : new SystemError(messageOf(err));
    }
  }
}

/** moby's tarCopyOptions: with copyUIDGID, the container's user (and primary group) owns what is copied in. */
async function containerUser(o: OpenFiles, v: ContainerFs): Promise<{ uid: number; gid: number }> {
  const read = async (p: string) => {
    try {
      return readFileSync(hostPath(v, await resolve(v, p, true)), 'utf8');
    } catch {
      return undefined;
    }
  };
  const u = resolveUser(String((o.c.Config as { User?: string }).User ?? ''), await read('/etc/passwd'), await read('/etc/group'), []);
  return { uid: u.uid, gid: u.gid };
}

/**
 * The tar with the files released at its end, also when it is dropped before
 * its first read (return() on a generator that never ran skips its finally).
 */
function released(src: AsyncGenerator<Buffer>, release: () => Promise<void>, path: string, ref: string): AsyncGenerator<Buffer> {
  const gen = (async function* () {
    try {
      yield* src;
    } catch (err) {
      throw fileError(err, path, ref);
    } finally {
      await release();
    }
  })();
  const ret = gen.return.bind(gen);
  gen.return = async (value) => {
    try {
      return await ret(value);
    } finally {
      await release();
    }
  };
  return gen;
}

function fileError(err: unknown, path: string, ref: string): Error {
  if (errnoCode(err) === 'ENOENT') return new NotFound(`Could not find the file ${path} in container ${ref}`);
  if (err instanceof SkiffError) return err;
  return new SystemError(messageOf(err));
}
