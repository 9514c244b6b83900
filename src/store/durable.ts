// Durability primitives for everything skiff keeps on flash: a power cut
// must leave the old file or the new one, never a torn or empty one.
import { randomBytes } from 'node:crypto';
import { promises as fs, constants } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** fsync a directory so a rename or create inside it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** Write temp → fsync → rename → fsync dir. */
export async function writeFileDurable(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  const fd = await fs.open(tmp, 'wx', mode);
  try {
    await fd.writeFile(data);
    await fd.datasync();
  } catch (err) {
    await fd.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fd.close();
  try {
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Temp files a crash left behind by writeFileDurable, for start-up recovery. */
export function isDurableTemp(name: string): boolean {
  return /^\..+\.tmp-[0-9a-f]{12}$/.test(name);
}
