// The data root: the only module that knows its layout. Other folders ask it
// for what they need instead of building paths into it.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, SystemError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isDurableTemp, writeFileDurable } from './durable.js';

export class DataRoot {
  private constructor(
    /** The resolved (symlink-free) path. */
    readonly path: string,
    readonly engineId: string,
  ) {}

  /**
   * Reads the data root after the caller locked it: start-up recovery first,
   * then the persistent engine ID (`docker info` shows it as ID).
   */
  static async load(realPath: string, logger: Logger): Promise<DataRoot> {
    await recoverTemps(realPath, logger);
    return new DataRoot(realPath, await loadEngineId(realPath));
  }
}

/** Creates the data root if needed (0711, like dockerd) and resolves symlinks, so the lock names one directory. */
export async function ensureDataRoot(path: string): Promise<string> {
  try {
    await fs.mkdir(path, { recursive: true, mode: 0o711 });
    return await fs.realpath(path);
  } catch (err) {
    throw new SystemError(`cannot create data root ${path}: ${(err as Error).message}`);
  }
}

async function recoverTemps(dir: string, logger: Logger): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (isDurableTemp(name)) {
      await fs.rm(join(dir, name), { force: true });
      logger.info('removed unfinished file left by an interrupted write', { file: join(dir, name) });
    }
  }
}

async function loadEngineId(dir: string): Promise<string> {
  const file = join(dir, 'engine-id');
  try {
    const id = (await fs.readFile(file, 'utf8')).trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw new SystemError(`reading ${file}: ${(err as Error).message}`);
  }
  const b = randomBytes(16);
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString('hex');
  const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  await writeFileDurable(file, id + '\n', 0o600);
  return id;
}
