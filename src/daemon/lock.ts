// The exclusive lock on a data root. Node has no flock(2), and a pid file
// goes stale after kill -9 or a power cut. A listening socket in the Linux
// abstract namespace is owned by the kernel: it exists exactly as long as the
// process holding it, and needs no file that could be left behind.
// Limit: abstract names are per network namespace, so two daemons in two
// different network namespaces are not kept apart by this lock.
import { createHash } from 'node:crypto';
import { createConnection, createServer, type Server } from 'node:net';
import { Conflict, errnoCode, SystemError } from '../errors.js';

export interface DataRootLock {
  release(): Promise<void>;
}

function lockName(realDataRoot: string): string {
  const digest = createHash('sha256').update(realDataRoot).digest('hex').slice(0, 32);
  return `\0skiff-data-root-${digest}`;
}

export async function lockDataRoot(realDataRoot: string): Promise<DataRootLock> {
  const name = lockName(realDataRoot);
  const server: Server = createServer((sock) => {
    // Whoever asks learns who holds the lock, for a helpful error message.
    sock.end(`${process.pid}\n`);
  });
  server.unref();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(name, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    if (errnoCode(err) === 'EADDRINUSE') {
      const holder = await askHolder(name);
      throw new Conflict(
        `data root ${realDataRoot} is in use by another skiff daemon${holder ? ` (pid ${holder})` : ''}; ` +
          'stop it or choose another --data-root',
      );
    }
    throw new SystemError(`cannot lock data root ${realDataRoot}: ${(err as Error).message}`);
  }
  return {
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function askHolder(name: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let data = '';
    const sock = createConnection(name);
    const done = (v: string | undefined) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => done(undefined));
    sock.on('data', (d: Buffer) => (data += d.toString()));
    sock.on('end', () => done(/^\d+$/.test(data.trim()) ? data.trim() : undefined));
    sock.on('error', () => done(undefined));
  });
}
