// Opening the API sockets named by -H: unix:///path (mode 0660, owned by
// --group), fd:// (sockets handed over by systemd socket activation) and
// tcp://addr:port (unauthenticated, as dockerd warns).
import { promises as fs, readFileSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { dirname } from 'node:path';
import { errnoCode, InvalidParameter, SystemError } from '../errors.js';
import type { Logger } from '../log/logger.js';

export interface Listener {
  host: string;
  /** The unix socket file to remove at shutdown, if any. */
  socketPath: string | undefined;
}

export function lookupGroup(group: string): number | undefined {
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

function listen(server: Server, target: string | { fd: number } | { host: string; port: number }): Promise<void> {
  const name = typeof target === 'string' ? target : 'fd' in target ? `fd ${target.fd}` : `${target.host}:${target.port}`;
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new SystemError(`failed to listen on ${name}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target, done);
  });
}

/** A socket file nobody answers on is left over from a crash and may go. */
async function removeStaleSocket(path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new SystemError(`another daemon is already listening on ${path}`);
  await fs.rm(path, { force: true });
}

function systemdFds(): number[] {
  const pid = process.env.LISTEN_PID;
  const count = Number(process.env.LISTEN_FDS ?? '0');
  if (pid !== undefined && pid !== String(process.pid)) return [];
  return Array.from({ length: Number.isInteger(count) && count > 0 ? count : 0 }, (_, i) => 3 + i);
}

export async function openListeners(
  hosts: string[],
  makeServer: () => Server,
  opts: { group: string; groupExplicit: boolean; logger: Logger },
): Promise<Listener[]> {
  const out: Listener[] = [];
  const { logger } = opts;
  let activated: number[] | undefined;
  for (const host of hosts) {
    const before = out.length;
    if (host.startsWith('unix://')) {
      const path = host.slice('unix://'.length);
      await fs.mkdir(dirname(path), { recursive: true });
      try {
        await fs.lstat(path);
        await removeStaleSocket(path);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      await listen(makeServer(), path);
      const gid = lookupGroup(opts.group);
      if (gid === undefined && opts.groupExplicit) {
        await fs.rm(path, { force: true });
        throw new InvalidParameter(`can't create unix socket ${path}: group ${opts.group} not found`);
      }
      // Only root can give the socket away; an unprivileged daemon keeps it as is.
      if (process.getuid?.() === 0) await fs.chown(path, 0, gid ?? 0);
      await fs.chmod(path, 0o660);
      out.push({ host, socketPath: path });
    } else if (host.startsWith('fd://')) {
      activated ??= systemdFds();
      const wanted = host.slice('fd://'.length);
      const fds = wanted === '' ? activated : activated.filter((fd) => fd === Number(wanted));
      if (fds.length === 0) {
        throw new InvalidParameter(
          wanted === '' ? 'no sockets found via socket activation: make sure the service was started by systemd' : `too few socket activated files passed in by systemd: fd ${wanted} not found`,
        );
      }
      for (const fd of fds) {
        await listen(makeServer(), { fd });
        out.push({ host: `fd://${fd}`, socketPath: undefined });
      }
      // The fds are ours now; children must not see them as theirs.
      delete process.env.LISTEN_FDS;
      delete process.env.LISTEN_PID;
      delete process.env.LISTEN_FDNAMES;
    } else if (host.startsWith('tcp://')) {
      const m = /^tcp:\/\/\[?([^\]]*)\]?:(\d+)$/.exec(host);
      if (!m) throw new InvalidParameter(`invalid host ${host}`);
      logger.warn('binding to a TCP address without TLS: anyone who can reach it controls the host', { host });
      await listen(makeServer(), { host: m[1] || '0.0.0.0', port: Number(m[2]) });
      out.push({ host, socketPath: undefined });
    } else {
      throw new InvalidParameter(`invalid host ${host}`);
    }
    for (const l of out.slice(before)) logger.info('API listen on ' + (l.socketPath ?? l.host));
  }
  return out;
}
