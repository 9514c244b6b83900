// A container's monitor: one tiny POSIX `sh` per container, in its own
// session, that runs the OCI runtime in the foreground (the runtime stays
// the container's parent and exits with its status) and writes that status
// to <dir>/exit when it ends. So skiff knows every exit code even if the
// daemon is killed -9 and restarted: Node cannot be a subreaper.
//
// Files in the container's state directory <dir>:
//   stdout, stderr, stdin   FIFOs (stderr absent with a TTY, stdin only when asked)
//   pid                     the container init's host pid (the runtime's --pid-file): present once started
//   exit                    the runtime's exit status, "143\n" (128+N after signal N, as Docker reports)
//   runtime.log             the runtime's JSON log (its error when it could not start the container)
//   monitor.json            {pid, id, tty, stdin}: what reattach() needs after a daemon restart
//   monitor.pid             the monitor's pid, written by the monitor itself (in case the daemon
//                           died before it wrote monitor.json)
//
// The monitor holds stdout and stderr open read-write (`exec 3<>stdout`):
// while the daemon is down the FIFOs keep a reader, so the container never
// gets EPIPE/SIGPIPE; once a pipe is full its writes just block until the
// daemon reopens the read end. stdin is different: the runtime reads it
// with a plain read end and the daemon holds the only writer, so closing it
// gives the container EOF (and a daemon death does too).
//
// Durability of the exit file: write to exit.tmp then rename, without
// fsync. The rename makes it atomic for readers; the page cache survives
// the daemon's death, and a power loss kills the container as well, so
// after a reboot "no exit file and no monitor" must be handled anyway
// (exitCode 255, lost). A `sync` per container exit would flush every
// dirty page of the board's storage, not just this file.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SystemError, errnoCode } from '../errors.js';
import { makeFifos, openFifoForChildStdin, openFifoHold, openFifoReader, openFifoWriteFdForChild, openFifoWriter } from './fifo.js';
import { runtimeError, signalName, ttyEnv, type OciRuntime } from './runtime.js';

export interface MonitorExit {
  /** The runtime's exit status: the container's, 128+N when signal N killed it. */
  exitCode: number;
  /** The signal name inferred from an exit code above 128 (as Docker shows it; a process may also exit 143 itself). */
  signal?: string;
  /** When the exit file was written. */
  finishedAt?: Date;
  /** No exit status was recorded (the monitor was killed, or the machine went down): exitCode is 255. */
  lost?: boolean;
}

export interface MonitorOptions {
  id: string;
  runtime: OciRuntime;
  bundle: string;
  /** The container's state directory (exists already). */
  dir: string;
  stdin: boolean;
  tty: boolean;
}

export interface Monitor {
  /** The sh monitor's pid. */
  pid: number;
  /** The container init's host pid (from the runtime's pid file). */
  containerPid: number;
  stdout: Readable;
  /** Absent with a TTY: the pty merges both. */
  stderr?: Readable;
  /** With stdin: end() gives the container EOF. */
  stdin?: Writable;
  exited: Promise<MonitorExit>;
  /** Lets this process exit while the container runs (the monitor holds a reference until it exits). */
  unref(): void;
}

export interface MonitorRecord {
  pid: number;
  id: string;
  tty: boolean;
  stdin: boolean;
}

// $0 skiff-monitor, $1 the container id (for monitorAlive), $2 dir, $3 1 with a TTY, then the runtime's argv.
// Traps (not ignores) HUP/INT/TERM/QUIT so the monitor outlives a stray
// signal while the runtime still gets default dispositions. With a TTY the
// stdin FIFO is held read-write too and is the runtime's stdin: it never
// sees EOF (like a terminal, and across a daemon restart); without one,
// stderr is a FIFO of its own.
const SCRIPT = [
  'dir=$2; tty=$3; shift 3',
  'trap : HUP INT TERM QUIT',
  'echo $$ >"$dir/monitor.pid"',
  'exec 3<>"$dir/stdout"',
  'if [ "$tty" = 1 ]; then exec 4<>"$dir/stdin" 0<&4; else exec 4<>"$dir/stderr"; fi',
  '"$@" 3>&- 4>&-',
  'rc=$?',
  'echo "$rc" >"$dir/exit.tmp" 2>/dev/null && mv -f "$dir/exit.tmp" "$dir/exit" 2>/dev/null',
].join('\n');

const MONITOR_ARGV0 = 'skiff-monitor';

/**
 * Starts a container under a new monitor and resolves once the container's
 * process runs (the runtime wrote its pid file); rejects with the runtime's
 * error when it could not start it.
 */
export async function startMonitor(opts: MonitorOptions): Promise<Monitor> {
  const { id, runtime, bundle, dir, tty } = opts;
  const hasStderr = !tty;
  for (const f of ['exit', 'exit.tmp', 'pid', 'runtime.log', 'monitor.json', 'monitor.pid']) rmSync(join(dir, f), { force: true });
  const fifos = [join(dir, 'stdout'), ...(hasStderr ? [join(dir, 'stderr')] : []), ...(opts.stdin || tty ? [join(dir, 'stdin')] : [])];
  for (const f of fifos) rmSync(f, { force: true });
  await makeFifos(fifos);

  const toClose: number[] = [];
  const toRelease: number[] = [];
  const streams: { destroy(): void }[] = [];
  let stdout: Readable | undefined;
  let stderr: Readable | undefined;
  let stdin: Writable | undefined;
  let stdinFd: number | 'ignore' = 'ignore';
  let outFd: number;
  let errFd: number | 'ignore' = 'ignore';
  try {
    stdout = openFifoReader(join(dir, 'stdout'));
    streams.push(stdout);
    outFd = openFifoWriteFdForChild(join(dir, 'stdout'));
    toClose.push(outFd);
    if (hasStderr) {
      stderr = openFifoReader(join(dir, 'stderr'));
      streams.push(stderr);
      errFd = openFifoWriteFdForChild(join(dir, 'stderr'));
      toClose.push(errFd);
    }
    if (opts.stdin && tty) {
      // The monitor holds the read end; until it does, a transient O_RDWR fd
      // lets the daemon open its write end without blocking.
      toRelease.push(openFifoHold(join(dir, 'stdin')));
      stdin = openFifoWriter(join(dir, 'stdin'));
      streams.push(stdin!);
    } else if (opts.stdin) {
      const s = openFifoForChildStdin(join(dir, 'stdin'));
      stdin = s.writer;
      streams.push(stdin);
      stdinFd = s.childFd;
      toClose.push(s.childFd);
    }
  } catch (err) {
    for (const fd of [...toClose, ...toRelease]) closeSync(fd);
    for (const s of streams) s.destroy();
    throw err;
  }

  const runArgv = runtime.runArgv(id, bundle, join(dir, 'pid'), join(dir, 'runtime.log'));
  const argv = tty ? runtime.ttyArgv(runArgv) : runArgv;
  const child = spawn('sh', ['-c', SCRIPT, MONITOR_ARGV0, id, dir, tty ? '1' : '0', ...argv], {
    detached: true,
    stdio: [stdinFd, outFd, errFd],
    env: ttyEnv(),
  });
  for (const fd of toClose) closeSync(fd);

  const childExit = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let failed: Error | undefined;
  void spawnError.then((e) => (failed = e));

  // Wait for the pid file (started) or the monitor's end (could not start).
  let exitedEarly = false;
  void childExit.then(() => (exitedEarly = true));
  let containerPid = 0;
  for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
    containerPid = readPidFile(join(dir, 'pid'));
    if (containerPid > 0) break;
    if (failed || exitedEarly) break;
    await sleep(delay);
  }
  if (containerPid === 0 && exitedEarly) containerPid = readPidFile(join(dir, 'pid'));
  for (const fd of toRelease) closeSync(fd);
  if (failed || containerPid === 0 || child.pid === undefined) {
    for (const s of streams) s.destroy();
    if (failed) throw new SystemError(`starting the monitor of ${id}: ${failed.message}`, { cause: failed });
    const log = readText(join(dir, 'runtime.log'));
    const exit = readExit(dir);
    if (!log.trim() && exit?.exitCode === 127) {
      throw new SystemError(`starting ${id}: ${tty ? `${runtime.scriptPath} (util-linux script, needed for a TTY) or ` : ''}${runtime.path} not found`);
    }
    throw runtimeError(runtime.name, `run ${id}`, exit?.exitCode ?? 255, log, runtime.hideUnifiedCgroup);
  }

  const record: MonitorRecord = { pid: child.pid, id, tty, stdin: opts.stdin };
  writeAtomic(join(dir, 'monitor.json'), JSON.stringify(record) + '\n');

  const exited = childExit.then(() => readExit(dir) ?? lostExit());
  return { pid: child.pid, containerPid, stdout, ...(stderr ? { stderr } : {}), ...(stdin ? { stdin } : {}), exited, unref: () => child.unref() };
}

/** The recorded exit status, or undefined while the container runs (or when none was recorded). */
export function readExit(dir: string): MonitorExit | undefined {
  const path = join(dir, 'exit');
  let text: string;
  let finishedAt: Date;
  try {
    text = readFileSync(path, 'utf8');
    finishedAt = statSync(path).mtime;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new SystemError(`reading ${path}: ${(err as Error).message}`, { cause: err });
  }
  const code = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(code) || code < 0) return { ...lostExit(), finishedAt };
  const sig = code > 128 ? signalName(code - 128) : undefined;
  return { exitCode: code, ...(sig ? { signal: sig } : {}), finishedAt };
}

/** Whether pid is still the monitor of container id (not a reused pid, not a zombie). */
export function monitorAlive(pid: number, id: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return false;
  }
  const args = cmdline.split('\0');
  // sh -c SCRIPT skiff-monitor ID DIR TTY runtime...
  const i = args.indexOf(MONITOR_ARGV0);
  return i > 0 && args[i + 1] === id;
}

/** The record startMonitor left in dir, if any. */
export function readMonitorRecord(dir: string): MonitorRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'monitor.json'), 'utf8')) as MonitorRecord;
  } catch {
    return undefined;
  }
}

export interface Reattached {
  stdout: Readable;
  stderr?: Readable;
  /** With a TTY and stdin: the monitor kept the stdin FIFO open, so it can be written again. */
  stdin?: Writable;
  exited: Promise<MonitorExit>;
}

/**
 * After a daemon restart: reopens the FIFO read ends (what the container
 * wrote meanwhile, up to a pipe's 64 KiB each, is still there) and watches
 * for the exit file. If the monitor is already gone the streams just end.
 * Without a TTY stdin is not reattached: the daemon's death closed its only
 * writer, so the container got EOF.
 */
export function reattach(dir: string, pid?: number, opts: { id?: string; pollMs?: number } = {}): Reattached {
  const record = readMonitorRecord(dir);
  const monitorPid = pid ?? record?.pid ?? readPidFile(join(dir, 'monitor.pid'));
  const id = opts.id ?? record?.id;
  if (!monitorPid || id === undefined) throw new SystemError(`no monitor record in ${dir}`);
  const tty = record ? record.tty : !existsSync(join(dir, 'stderr'));
  const stdout = openFifoReader(join(dir, 'stdout'));
  const stderr = tty ? undefined : openFifoReader(join(dir, 'stderr'));
  const stdin = tty && record?.stdin ? openFifoWriter(join(dir, 'stdin')) : undefined;
  const exited = waitExit(dir, monitorPid, id, opts.pollMs ?? 250);
  return { stdout, ...(stderr ? { stderr } : {}), ...(stdin ? { stdin } : {}), exited };
}

/** Polls until the exit file appears or the monitor is gone (then lost unless the file appeared meanwhile). */
export async function waitExit(dir: string, pid: number, id: string, pollMs = 250): Promise<MonitorExit> {
  for (;;) {
    const e = readExit(dir);
    if (e) return e;
    if (!monitorAlive(pid, id)) return readExit(dir) ?? lostExit();
    await sleep(pollMs);
  }
}

function lostExit(): MonitorExit {
  return { exitCode: 255, lost: true };
}

function readPidFile(path: string): number {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}

/**
 * Sets the size of a TTY container's terminal: `stty -F /proc/<pid>/fd/0`
 * opens the container's pty through its init's stdin (the runtime keeps
 * the master inside its own process) and the kernel sends SIGWINCH.
 */
export function resizeTty(containerPid: number, rows: number, cols: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('stty', ['-F', `/proc/${containerPid}/fd/0`, 'rows', String(rows), 'cols', String(cols)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new SystemError(`resizing the TTY of pid ${containerPid}: ${err.message}`, { cause: err })));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SystemError(`resizing the TTY of pid ${containerPid}: ${stderr.trim() || `stty exit ${code}`}`));
    });
  });
}
