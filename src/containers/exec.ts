// docker exec: extra processes in a running container, with moby's rules
// (daemon/exec.go, exec_linux.go, resize.go at v20.10). An exec record is
// created, started once (attached to a hijacked connection, or detached),
// and kept after it exits so the CLI can read its ExitCode; records go when
// their container is removed, or after moby's two-round garbage collection
// (every 5 minutes, an exec that no longer belongs to a running container is
// marked CanRemove, and dropped at the next round).
//
// The process runs as a foreground `runc exec` (OciRuntime.exec): its exit
// code is the process'. Its spec is the container's own process (from the
// bundle's config.json: capabilities, rlimits, no-new-privileges...) with the
// exec's argv, environment, user, working directory and terminal.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Conflict, InvalidParameter, NotFound, SystemError, messageOf } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { resizeTty } from '../exec/monitor.js';
import { ALL_CAPABILITIES, capabilitiesFromMask, containerEnv, replaceOrAppendEnv, type ContainerConfig } from '../exec/spec.js';
import { resolveUser } from '../exec/user.js';
import type { ContainerRecord, ContainerStore } from '../store/containers.js';
import { signalNumber, type OciRuntime } from '../exec/runtime.js';
import type { EventEmitter } from 'node:events';

/** What the exec service needs of the container service. */
export interface ExecHost {
  runtimeOf(c: ContainerRecord): OciRuntime;
  /** 'exit' (id, code) and 'removed' (id) events. */
  readonly emitter: EventEmitter;
  /** A container event on the bus (exec_create, exec_start, exec_die), with the container's attributes. */
  publish(c: ContainerRecord, action: string, extra?: Record<string, string>): void;
}

export interface ExecServiceOptions {
  store: ContainerStore;
  containers: ExecHost;
  logger: Logger;
  /** moby's execCommandGC period (5 minutes); 0 disables it. */
  gcIntervalMs?: number;
}

/** Where an attached exec's output goes, and its input comes from. */
export interface ExecIO {
  write(stream: 'stdout' | 'stderr', data: Buffer): Promise<void>;
  input: Readable | undefined;
  closed: Promise<void>;
}

export interface ExecInspect {
  ID: string;
  Running: boolean;
  ExitCode: number | null;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user?: string };
  OpenStdin: boolean;
  OpenStderr: boolean;
  OpenStdout: boolean;
  CanRemove: boolean;
  ContainerID: string;
  DetachKeys: string;
  Pid: number;
}

interface ExecRecord {
  id: string;
  containerId: string;
  running: boolean;
  exitCode: number | null;
  canRemove: boolean;
  openStdin: boolean;
  openStdout: boolean;
  openStderr: boolean;
  detachKeys: string;
  entrypoint: string;
  args: string[];
  tty: boolean;
  privileged: boolean;
  user: string;
  workingDir: string;
  env: string[];
  pid: number;
  /** The pid of what was spawned (`script` with a TTY, else the runtime). */
  spawnedPid: number;
  /** Resolves once the process started or failed to (moby's ec.Started). */
  started: Promise<void>;
  markStarted: () => void;
}

const GC_INTERVAL_MS = 5 * 60 * 1000;
/** The daemon's own capability bounding set: a privileged exec gets all of it. */
const HOST_CAPS = capabilitiesFromMask(/^CapBnd:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0');

export class ExecService {
  private readonly execs = new Map<string, ExecRecord>();

  constructor(private readonly o: ExecServiceOptions) {
    o.containers.emitter.on('removed', (cid: string) => {
      for (const [id, e] of this.execs) if (e.containerId === cid) this.execs.delete(id);
    });
    // moby's Cleanup after a container stops unregisters the execs still in its
    // list: those never started are gone (a later start is a 404). Running ones
    // end with the container and keep their exit code here, for attached clients.
    o.containers.emitter.on('exit', (cid: string) => {
      for (const [id, e] of this.execs) if (e.containerId === cid && e.exitCode === null && !e.running) this.execs.delete(id);
    });
    const period = o.gcIntervalMs ?? GC_INTERVAL_MS;
    if (period > 0) setInterval(() => this.gc(), period).unref();
  }

  /** moby's execCommandGC: two rounds, so an exited exec stays inspectable for 5 to 10 minutes. */
  private gc(): void {
    for (const [id, e] of this.execs) {
      if (e.canRemove) this.execs.delete(id);
      else if (!this.live(e)) e.canRemove = true;
    }
  }

  /** Still in its container's list (moby's c.ExecCommands): not exited, and the container still runs. */
  private live(e: ExecRecord): boolean {
    const c = this.o.store.find(e.containerId);
    return e.exitCode === null && c !== undefined && c.State.Running;
  }

  // ---- create ------------------------------------------------------------

  create(ref: string, body: unknown): { Id: string } {
    if (body === undefined) throw new InvalidParameter('got EOF while reading request body');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidParameter('json: cannot unmarshal into Go value of type types.ExecConfig');
    const b = body as Record<string, unknown>;
    const cmd = stringList(b.Cmd, 'Cmd');
    if (cmd.length === 0) throw new InvalidParameter('No exec command specified');
    const c = this.o.store.get(ref);
    if (!c.State.Running) throw new Conflict(`Container ${c.Id} is not running`);
    if (c.State.Paused) throw new Conflict(`Container ${ref} is paused, unpause the container before exec`);
    if (c.State.Restarting) throw new Conflict(`Container ${c.Id} is restarting, wait until the container is running`);
    const detachKeys = typeof b.DetachKeys === 'string' ? b.DetachKeys : '';
    if (detachKeys !== '' && !validDetachKeys(detachKeys)) throw new InvalidParameter(`Invalid escape keys (${detachKeys}) provided`);
    const cfg = c.Config as unknown as ContainerConfig;
    const tty = b.Tty === true;
    let markStarted!: () => void;
    const started = new Promise<void>((r) => (markStarted = r));
    const e: ExecRecord = {
      id: randomBytes(32).toString('hex'),
      containerId: c.Id,
      running: false,
      exitCode: null,
      canRemove: false,
      openStdin: b.AttachStdin === true,
      openStdout: b.AttachStdout === true,
      openStderr: b.AttachStderr === true,
      detachKeys,
      entrypoint: cmd[0] as string,
      args: cmd.slice(1),
      tty,
      privileged: b.Privileged === true,
      user: (typeof b.User === 'string' && b.User) || String(cfg.User ?? ''),
      workingDir: (typeof b.WorkingDir === 'string' && b.WorkingDir) || String(cfg.WorkingDir ?? ''),
      // moby: CreateDaemonEnvironment(exec's Tty) (PATH, HOSTNAME, TERM, Config.Env), then the exec's Env.
      env: replaceOrAppendEnv(containerEnv({ ...cfg, Tty: tty }), stringList(b.Env, 'Env')),
      pid: 0,
      spawnedPid: 0,
      started,
      markStarted,
    };
    this.execs.set(e.id, e);
    this.o.containers.publish(c, `exec_create: ${commandLine(e)}`, { execID: e.id });
    return { Id: e.id };
  }

  // ---- inspect -------------------------------------------------------------

  inspect(id: string): ExecInspect {
    const e = this.execs.get(id);
    if (!e || !this.o.store.find(e.containerId)) throw new NotFound(`No such exec instance: ${id}`);
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: { tty: e.tty, entrypoint: e.entrypoint, arguments: e.args, privileged: e.privileged, ...(e.user ? { user: e.user } : {}) },
      OpenStdin: e.openStdin,
      OpenStderr: e.openStderr,
      OpenStdout: e.openStdout,
      CanRemove: e.canRemove,
      ContainerID: e.containerId,
      // []byte in moby: base64 in JSON.
      DetachKeys: Buffer.from(e.detachKeys ? detachKeyBytes(e.detachKeys) : []).toString('base64'),
      Pid: e.pid,
    };
  }

  // ---- start ---------------------------------------------------------------

  /** moby's getExecConfig: the exec exists and its container runs (not paused or restarting). */
  check(id: string): void {
    this.active(id);
  }

  private active(id: string): { e: ExecRecord; c: ContainerRecord } {
    const e = this.execs.get(id);
    if (!e) throw new NotFound(`No such exec instance: ${id}`);
    const c = this.o.store.find(e.containerId);
    if (!c) throw new NotFound(`No such container: ${id}`);
    if (!c.State.Running && e.exitCode === null && !e.running) {
      // Its container stopped (the 'exit' event may still be on its way): unregistered, as by moby's Cleanup.
      this.execs.delete(e.id);
      throw new NotFound(`No such exec instance: ${id}`);
    }
    if (!c.State.Running) throw new SystemError(`Container ${c.Id} is not running: ${stateString(c)}`);
    if (c.State.Paused) throw new Conflict(`Container ${c.Id} is paused, unpause the container before exec`);
    if (c.State.Restarting) throw new Conflict(`Container ${c.Id} is restarting, wait until the container is running`);
    return { e, c };
  }

  /**
   * Runs the exec. Attached (`io`): resolves when the process exited and its
   * output was written, with ExitCode recorded. Detached: resolves once the
   * process started. Throws when it could not start (ExitCode 126, as moby).
   */
  async start(id: string, io: ExecIO | undefined): Promise<void> {
    let e: ExecRecord;
    let c: ContainerRecord;
    try {
      ({ e, c } = this.active(id));
    } catch (err) {
      // moby answers every lookup failure of a start with 404.
      throw new NotFound(`No such exec instance: ${id}`, { cause: err });
    }
    if (e.exitCode !== null) throw new Conflict(`Error: Exec command ${e.id} has already run`);
    if (e.running) throw new Conflict(`Error: Exec command ${e.id} is already running`);
    e.running = true;
    this.o.containers.publish(c, `exec_start: ${commandLine(e)}`, { execID: e.id });
    const p = this.o.store.paths(c.Id);
    const tag = `exec-${e.id.slice(0, 12)}`;
    const pidFile = join(p.dir, `${tag}.pid`);
    const logFile = join(p.dir, `${tag}.log`);
    const cleanup = () => {
      rmSync(pidFile, { force: true });
      rmSync(logFile, { force: true });
    };
    let child: ChildProcess;
    try {
      rmSync(pidFile, { force: true });
      rmSync(logFile, { force: true });
      const spec = this.processSpec(e, c);
      const withStdin = io !== undefined && e.openStdin && io.input !== undefined;
      child = this.o.containers.runtimeOf(c).exec(c.Id, spec, {
        tty: e.tty,
        stdio: [withStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        pidFile,
        logFile,
      });
    } catch (err) {
      this.failed(e);
      cleanup();
      throw err;
    }
    e.spawnedPid = child.pid ?? 0;
    const exited = new Promise<number>((resolve) => {
      child.once('error', () => resolve(-1));
      child.once('exit', (code, signal) => resolve(code ?? 128 + signalNumber(signal)));
    });
    // Output: held until the process is known to have started (what comes
    // before a failed start is the runtime's own error, which moby does not
    // pass on), then drained whether or not anyone listens, so the process
    // never blocks on a full pipe.
    let decide!: (started: boolean) => void;
    const gate = new Promise<boolean>((r) => (decide = r));
    const stderrText: Buffer[] = [];
    const drain = async (stream: 'stdout' | 'stderr', src: Readable | null, wanted: boolean): Promise<void> => {
      if (!src) return;
      try {
        for await (const chunk of src) {
          if (!(await gate)) {
            if ((stream === 'stderr' || e.tty) && stderrText.length < 64) stderrText.push(chunk as Buffer);
            continue;
          }
          if (io && wanted) await io.write(stream, chunk as Buffer).catch(() => undefined);
        }
      } catch {
        // the pipe broke: the process is gone
      }
    };
    const outputDone = Promise.all([drain('stdout', child.stdout, e.openStdout), drain('stderr', child.stderr, e.openStderr)]);
    if (child.stdin) {
      const stdin = child.stdin;
      stdin.on('error', () => undefined);
      if (io?.input) {
        // A half-close of the client is stdin EOF.
        io.input.pipe(stdin);
      } else stdin.end();
    }

    // Started: the runtime wrote the pid file. Not started: it exited first.
    let gone = false;
    void exited.then(() => (gone = true));
    for (let delay = 2; !gone; delay = Math.min(delay * 2, 25)) {
      e.pid = readPid(pidFile);
      if (e.pid > 0) break;
      await sleep(delay);
    }
    if (!e.pid) e.pid = readPid(pidFile);
    decide(e.pid > 0);
    e.markStarted();
    if (!e.pid) {
      const code = await exited;
      await outputDone;
      const msg = runtimeFailure(readText(logFile)) ?? (Buffer.concat(stderrText).toString().trim() || `exit status ${code}`);
      cleanup();
      this.failed(e);
      throw new SystemError(`OCI runtime exec failed: ${msg}: unknown`);
    }
    const finish = (async () => {
      const code = await exited;
      await outputDone;
      const failure = code !== 0 ? runtimeFailure(readText(logFile)) : undefined;
      cleanup();
      if (failure !== undefined) this.o.logger.warn('exec ended with a runtime error', { exec: e.id.slice(0, 12), error: failure });
      // Recorded before the caller closes the connection: the CLI inspects right after EOF.
      e.exitCode = code;
      e.running = false;
      this.o.containers.publish(this.o.store.find(e.containerId) ?? c, 'exec_die', { execID: e.id, exitCode: String(code) });
    })();
    if (!io) {
      void finish.catch((err: unknown) => this.o.logger.warn('exec failed', { exec: e.id.slice(0, 12), error: messageOf(err) }));
      return;
    }
    await finish;
  }

  private failed(e: ExecRecord): void {
    e.running = false;
    e.exitCode = 126;
    e.markStarted();
  }

  /** The container's process spec with the exec's argv, env, cwd, user, terminal (moby's ContainerExecStart + execSetPlatformOpt). */
  private processSpec(e: ExecRecord, c: ContainerRecord): Record<string, unknown> {
    const p = this.o.store.paths(c.Id);
    const base = containerProcess(join(p.bundle, 'config.json'));
    const readRoot = (rel: string): string | undefined => {
      try {
        return readFileSync(join(p.merged, rel), 'utf8');
      } catch {
        return undefined;
      }
    };
    const hc = c.HostConfig as { GroupAdd?: string[] };
    const user = resolveUser(e.user, readRoot('etc/passwd'), readRoot('etc/group'), hc.GroupAdd ?? []);
    const containerCaps = ((base.capabilities as { bounding?: string[] } | undefined)?.bounding ?? []).slice();
    const caps = e.privileged ? ALL_CAPABILITIES.filter((cap) => HOST_CAPS.includes(cap)) : containerCaps;
    const { consoleSize: _cs, ...rest } = base;
    return {
      ...rest,
      terminal: e.tty,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: [e.entrypoint, ...e.args],
      env: e.env,
      cwd: e.workingDir || '/',
      // As for the container's init: a non-root user keeps only the bounding set.
      capabilities: user.uid === 0 ? { bounding: caps, effective: [...caps], permitted: [...caps] } : { bounding: caps },
    };
  }

  // ---- resize --------------------------------------------------------------

  async resize(id: string, height: number, width: number): Promise<void> {
    const { e } = this.active(id);
    const ready = await Promise.race([e.started.then(() => true), sleep(10_000).then(() => false)]);
    if (!ready) throw new SystemError('timeout waiting for exec session ready');
    if (!e.tty || !e.running || !e.pid) return;
    // runc copies its own terminal's size (script's pty) to the exec's pty at
    // start and on SIGWINCH: resize that one, then the exec's pty itself.
    await resizeTerminal(e.spawnedPid, 1, e.pid, height, width).catch((err: unknown) => {
      if (e.running) throw err;
    });
  }
}

/**
 * Resizes a TTY process started by a runtime under `script`: first the
 * terminal script gave the runtime (found `depth` generations below
 * `ancestorPid`; the runtime passes the size on to the container's pty on
 * SIGWINCH, and copies it at start, so a resize that comes early is not lost),
 * then the process' own pty.
 */
export async function resizeTerminal(ancestorPid: number, depth: number, processPid: number, height: number, width: number): Promise<void> {
  if (height <= 0 && width <= 0) return;
  const runtimePid = ancestorPid > 0 ? descendant(ancestorPid, depth) : undefined;
  if (runtimePid !== undefined) await resizeTty(runtimePid, height, width).catch(() => undefined);
  await resizeTty(processPid, height, width);
}

/** The (first) process `depth` generations below pid, from /proc. */
function descendant(pid: number, depth: number): number | undefined {
  const parents = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = parents.get(ppid) ?? [];
    list.push(Number(name));
    parents.set(ppid, list);
  }
  let cur: number | undefined = pid;
  for (let i = 0; i < depth && cur !== undefined; i++) cur = parents.get(cur)?.[0];
  return cur;
}

/** The `process` of a bundle's config.json, with unlimited rlimits kept exact (2^64 as in buildRlimits). */
function containerProcess(configPath: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    throw new SystemError(`reading the container's spec: ${messageOf(err)}`, { cause: err });
  }
  const marked = text.split('18446744073709551615').join('"__skiff_RLIM_INFINITY__"');
  const spec = JSON.parse(marked, (_k, v: unknown) => (v === '__skiff_RLIM_INFINITY__' ? 2 ** 64 : v)) as { process?: Record<string, unknown> };
  return spec.process ?? {};
}

/** The runtime's own error (an error-level line of its JSON log), if it logged one. */
function runtimeFailure(log: string): string | undefined {
  let found: string | undefined;
  for (const raw of log.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { msg?: unknown; level?: unknown };
      if ((o.level === 'error' || o.level === 'fatal') && typeof o.msg === 'string') found = o.msg;
    } catch {
      // not JSON
    }
  }
  return found;
}

/** moby's event text: the entrypoint, a space, the arguments joined by spaces ("sh " without any). */
function commandLine(e: ExecRecord): string {
  return `${e.entrypoint} ${e.args.join(' ')}`;
}

/** moby's State.String() for a container that is not running. */
function stateString(c: ContainerRecord): string {
  const s = c.State;
  if (s.Status === 'created') return 'Created';
  if (s.Status === 'dead') return 'Dead';
  const ago = Math.max(0, Math.floor((Date.now() - Date.parse(s.FinishedAt)) / 1000));
  return `Exited (${s.ExitCode}) ${ago} seconds ago`;
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new InvalidParameter(`json: cannot unmarshal ${typeof v} into Go struct field ExecConfig.${field} of type []string`);
  }
  return v as string[];
}

/** moby's term.ToBytes: comma-separated single characters or ctrl-<x>. */
function detachKeyBytes(keys: string): number[] {
  const out: number[] = [];
  for (const raw of keys.split(',')) {
    const k = raw.trim();
    if (k.length === 1) {
      out.push(k.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-([a-z@\[\\\]^_])$/i.exec(k);
    if (!m) return [];
    const ch = (m[1] as string).toLowerCase();
    out.push(ch >= 'a' && ch <= 'z' ? ch.charCodeAt(0) - 96 : ch.charCodeAt(0) - 64);
  }
  return out;
}

function validDetachKeys(keys: string): boolean {
  return keys.split(',').every((raw) => {
    const k = raw.trim();
    return k.length === 1 || /^ctrl-([a-z@\[\\\]^_])$/i.test(k);
  });
}

function readPid(path: string): number {
  if (!existsSync(path)) return 0;
  const n = Number.parseInt(readText(path).trim(), 10);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
