// FIFOs between the daemon and a container's monitor. Node has no mkfifo,
// so they are made by the `mkfifo` tool (coreutils or busybox; `mknod NAME p`
// as a fallback), all of one container's in a single `sh`.
//
// Reading: the read end is opened O_RDONLY|O_NONBLOCK (never blocks, even
// with no writer) and wrapped in a net.Socket: libuv treats a FIFO fd as a
// pipe stream and waits for data with epoll, so an idle container costs no
// thread-pool thread (fs.createReadStream would park one thread per FIFO in
// a blocking read(), and fails with EAGAIN on a non-blocking fd). A reader
// opened before any writer does not see EOF: Linux reports no hang-up on a
// FIFO that never had a writer.
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { SystemError, errnoCode } from '../errors.js';

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Creates FIFOs (mode 0600) that do not exist yet. */
export function makeFifos(paths: string[], mode = 0o600): Promise<void> {
  if (paths.length === 0) return Promise.resolve();
  const m = mode.toString(8);
  const script =
    'set -e\n' +
    paths.map((p) => `[ -p ${q(p)} ] || mkfifo -m ${m} ${q(p)} 2>/dev/null || { mknod ${q(p)} p && chmod ${m} ${q(p)}; }`).join('\n') +
    '\n';
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new SystemError(`creating FIFOs: ${err.message}`, { cause: err })));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SystemError(`creating FIFOs (mkfifo) failed: ${stderr.trim() || `exit ${code}`}`));
    });
  });
}

/** The read end as a stream; it ends when every writer has closed (once one had opened it). */
export function openFifoReader(path: string): Readable {
  const fd = openFd(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}

/**
 * A write end for a child process (a monitor's stdout/stderr), opened
 * blocking. Needs a reader to exist already (openFifoReader first), or it
 * would block the calling thread: it is opened with O_NONBLOCK first to
 * check (ENXIO when there is no reader), then reopened blocking.
 * The caller passes the fd to spawn and closes it afterwards.
 */
export function openFifoWriteFdForChild(path: string): number {
  const probe = openFd(path, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    return openFd(path, constants.O_WRONLY);
  } finally {
    closeSync(probe);
  }
}

/**
 * Both ends of a stdin FIFO: a blocking read end for the child (the runtime
 * must see plain blocking reads) and the daemon's write end as a stream.
 * Closing (end()) the writable gives the container EOF. Opened through a
 * transient O_RDWR fd so that neither open blocks.
 */
export function openFifoForChildStdin(path: string): { childFd: number; writer: Writable } {
  const rw = openFd(path, constants.O_RDWR);
  try {
    const childFd = openFd(path, constants.O_RDONLY);
    const writeFd = openFd(path, constants.O_WRONLY | constants.O_NONBLOCK);
    return { childFd, writer: new Socket({ fd: writeFd, readable: false, writable: true }) };
  } finally {
    closeSync(rw);
  }
}

/** An O_RDWR fd: a reader and a writer at once, so other opens of the FIFO never block or fail. */
export function openFifoHold(path: string): number {
  return openFd(path, constants.O_RDWR);
}

/** A write end for the daemon, when the reader is already there (after a restart); undefined without a reader. */
export function openFifoWriter(path: string): Writable | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === 'ENXIO') return undefined;
    throw new SystemError(`opening FIFO ${path}: ${(err as Error).message}`, { cause: err });
  }
  return new Socket({ fd, readable: false, writable: true });
}

function openFd(path: string, flags: number): number {
  try {
    return openSync(path, flags);
  } catch (err) {
    throw new SystemError(`opening FIFO ${path}: ${(err as Error).message}`, { cause: err });
  }
}
