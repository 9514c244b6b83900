// Making a whole layer durable at once. Node has no syncfs(2) and fsyncing
// every small file of a layer costs one journal commit each on flash; the
// `sync` tool (coreutils and BusyBox both take `-f`) syncs the filesystem
// that holds the layer in one call, as balenaEngine's per-layer sync does.
import { spawn } from 'node:child_process';
import { SystemError } from '../errors.js';

function run(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('sync', args, { stdio: 'ignore' });
    child.on('error', (err) => reject(new SystemError(`sync: ${err.message}`)));
    child.on('close', (code) => resolve(code ?? 1));
  });
}

export async function syncFilesystem(path: string): Promise<void> {
  if ((await run(['-f', path])) === 0) return;
  // An old sync without -f: sync everything.
  if ((await run([])) !== 0) throw new SystemError(`sync of ${path} failed`);
}
