// The one module that runs the OCI runtime's command line (runc or crun).
// Every other module asks this one: it builds the argv (global options,
// the state root, the crun hybrid-cgroup workaround), turns the runtime's
// stderr into typed SkiffErrors, and parses its JSON answers.
//
// Long-lived runtime processes (the foreground `run` under a monitor, a
// foreground `exec`) get their argv from runArgv()/ttyArgv()/exec() here,
// so every invocation follows the same rules.
import { spawn, type ChildProcess, type StdioNull, type StdioPipe } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stream } from 'node:stream';
import { Conflict, NotFound, NotImplemented, SystemError, type SkiffError } from '../errors.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface RuntimeState {
  status: ContainerStatus;
  pid: number;
}

export interface RuntimeVersion {
  name: string;
  version: string;
  commit?: string;
  spec?: string;
}

export interface OciRuntimeOptions {
  /** What skiff calls it ("runc", "crun"): used in messages. */
  name: string;
  /** The executable (absolute path or a name looked up in PATH). */
  path: string;
  /** Extra global options placed before the command (e.g. ["--systemd-cgroup"]). */
  args?: string[];
  /** The runtime's state directory (its `--root`), e.g. <exec-root>/runc. */
  root: string;
  /**
   * crun 1.8 refuses a hybrid cgroup layout (cgroup v1 controllers plus a
   * cgroup2 mount at /sys/fs/cgroup/unified). With this option every crun
   * command runs in a private mount namespace where that mount is gone:
   * `unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun ...'`.
   * unshare execs into sh which execs the runtime: no extra process stays.
   */
  hideUnifiedCgroup?: boolean;
  /**
   * A foreground runtime with a TTY (runc 1.1 `run`/`exec -t`, crun alike)
   * insists on a terminal of its own on stdin/stdout/stderr or a controlling
   * one (it sets it raw and resizes the container's pty from it), and a
   * monitor has none. So TTY commands run under util-linux `script`, which
   * gives the runtime a pty and copies it to its own stdio (the FIFOs):
   * `script -q -e -c 'runtime ...' /dev/null`. The program to use (default "script").
   */
  scriptPath?: string;
  /** Directory for exec process specs (default: the OS temp dir). */
  tmpDir?: string;
}

/** One element of a child's stdio, as child_process.spawn takes it. */
export type StdioElement = StdioPipe | StdioNull | 'inherit' | number | Stream;

export interface ExecOptions {
  tty: boolean;
  /** `exec -d`: the runtime returns once the process started; its exit code is lost. */
  detach?: boolean;
  /** stdin, stdout, stderr of the runtime (and so of the process, or of its pty copy with tty). */
  stdio: [StdioElement, StdioElement, StdioElement];
  /** The runtime writes the process' host pid there once it started (`--pid-file`). */
  pidFile?: string;
  /** The runtime's own messages (its errors) go there instead of its stderr (`--log`). */
  logFile?: string;
}

const HYBRID_MESSAGE = 'cgroups in hybrid mode not supported';

/** The hybrid-layout mount crun trips on. */
export const UNIFIED_CGROUP_MOUNT = '/sys/fs/cgroup/unified';

export class OciRuntime {
  readonly name: string;
  readonly path: string;
  readonly root: string;
  readonly globalArgs: string[];
  readonly hideUnifiedCgroup: boolean;
  readonly scriptPath: string;
  readonly tmpDir: string;

  constructor(opts: OciRuntimeOptions) {
    this.name = opts.name;
    this.path = opts.path;
    this.root = opts.root;
    this.globalArgs = opts.args ?? [];
    this.hideUnifiedCgroup = opts.hideUnifiedCgroup ?? false;
    this.scriptPath = opts.scriptPath ?? 'script';
    this.tmpDir = opts.tmpDir ?? tmpdir();
  }

  /** argv run under `script`, which gives it a terminal (see scriptPath); spawn it with ttyEnv(). */
  ttyArgv(argv: string[]): string[] {
    return [this.scriptPath, '-q', '-e', '-c', `exec ${argv.map(shq).join(' ')}`, '/dev/null'];
  }

  /**
   * The full argv (argv[0] is the program to spawn) for a runtime command.
   * With hideUnifiedCgroup the runtime runs as `unshare -m sh -c '...; exec "$0" "$@"' runtime args...`.
   */
  argv(args: string[], logFile?: string): string[] {
    const log = logFile === undefined ? [] : ['--log', logFile];
    const runtimeArgv = [this.path, '--root', this.root, ...log, '--log-format', 'json', ...this.globalArgs, ...args];
    if (!this.hideUnifiedCgroup) return runtimeArgv;
    return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `umount ${UNIFIED_CGROUP_MOUNT} 2>/dev/null; exec "$0" "$@"`, ...runtimeArgv];
  }

  /**
   * The argv of a foreground `run`, for a monitor: the runtime stays the
   * container's parent and exits with its status (128+N after signal N).
   * Its JSON log goes to logFile; the pid file appears once the process started.
   */
  runArgv(id: string, bundle: string, pidFile: string, logFile: string): string[] {
    return this.argv(['run', '--bundle', bundle, '--pid-file', pidFile, id], logFile);
  }

  /** `state`: undefined when the runtime does not know the container. */
  async state(id: string): Promise<RuntimeState | undefined> {
    const r = await this.run(['state', id]);
    if (r.code !== 0) {
      const err = this.error(`state of ${id}`, r);
      if (err instanceof NotFound) return undefined;
      throw err;
    }
    const parsed = parseJson(r.stdout, `${this.name} state ${id}`) as { status?: string; pid?: number };
    const status = parsed.status;
    if (status !== 'created' && status !== 'running' && status !== 'paused' && status !== 'stopped') {
      throw new SystemError(`${this.name} state ${id}: unexpected status ${JSON.stringify(status)}`);
    }
    return { status, pid: typeof parsed.pid === 'number' ? parsed.pid : 0 };
  }

  /** Signal the container's init (or every process of it with `all`). */
  async kill(id: string, signal: string | number = 'TERM', all = false): Promise<void> {
    const sig = typeof signal === 'number' ? String(signal) : signal.replace(/^SIG/i, '').toUpperCase();
    await this.check(`kill ${id}`, ['kill', ...(all ? ['--all'] : []), id, sig]);
  }

  async pause(id: string): Promise<void> {
    await this.check(`pause ${id}`, ['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.check(`resume ${id}`, ['resume', id]);
  }

  /**
   * Deletes the container's runtime state (with force, killing it first).
   * Unknown containers are fine. A foreground `run` deletes its container
   * itself when the container ends, so this is for cleanups.
   */
  async delete(id: string, force = false): Promise<void> {
    const r = await this.run(['delete', ...(force ? ['--force'] : []), id]);
    if (r.code === 0) return;
    const err = this.error(`delete ${id}`, r);
    if (err instanceof NotFound) return;
    throw err;
  }

  /** The host pids of the container's processes. */
  async ps(id: string): Promise<number[]> {
    const r = await this.run(['ps', '--format', 'json', id]);
    if (r.code !== 0) throw this.error(`ps ${id}`, r);
    const parsed = parseJson(r.stdout, `${this.name} ps ${id}`);
    if (parsed === null) return [];
    if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'number')) {
      throw new SystemError(`${this.name} ps ${id}: unexpected output ${r.stdout.slice(0, 200)}`);
    }
    return parsed as number[];
  }

  /** `update --resources -`: resources is an OCI linux.resources object. */
  async update(id: string, resources: object): Promise<void> {
    await this.check(`update ${id}`, ['update', '--resources', '-', id], JSON.stringify(resources));
  }

  async version(): Promise<RuntimeVersion> {
    const r = await this.run(['--version'], undefined, false);
    if (r.code !== 0) throw this.error('version', r);
    const lines = r.stdout.split('\n');
    const first = /^(\S+) version (\S+)/.exec(lines[0] ?? '');
    if (!first) throw new SystemError(`${this.name} --version: unexpected output ${r.stdout.slice(0, 200)}`);
    const v: RuntimeVersion = { name: first[1]!, version: first[2]! };
    for (const line of lines) {
      const m = /^(commit|spec):\s*(.+)$/.exec(line.trim());
      if (m) v[m[1] as 'commit' | 'spec'] = m[2]!.trim();
    }
    return v;
  }

  /**
   * A foreground `exec --process <spec>`: the returned child's exit code is
   * the exec'd process' (128+N when a signal killed it). The process spec
   * goes through a 0600 file in tmpDir, removed when the child exits (Node's
   * extra stdio "pipes" are socketpairs, which /proc/self/fd/N cannot reopen).
   * With tty the runtime runs under `script` (see scriptPath): the child's
   * stdout carries the pty's output, stderr stays empty.
   */
  exec(id: string, processSpec: object, opts: ExecOptions): ChildProcess {
    if (opts.tty && opts.detach) throw new NotImplemented(`${this.name} exec: a detached process with a TTY needs a console socket, which skiff cannot receive`);
    const spec = { ...(processSpec as Record<string, unknown>), terminal: opts.tty };
    const file = join(this.tmpDir, `skiff-exec-${id.slice(0, 24)}-${randomBytes(6).toString('hex')}.json`);
    // An unlimited rlimit is 2^64 here (beyond a JS number's precision): written exactly, as in specToJSON.
    const text = JSON.stringify(spec, (_k, v: unknown) => (v === 2 ** 64 ? '__skiff_RLIM_INFINITY__' : v)).split('"__skiff_RLIM_INFINITY__"').join('18446744073709551615');
    writeFileSync(file, text, { mode: 0o600 });
    const args = ['exec', '--process', file, ...(opts.detach ? ['--detach'] : []), ...(opts.pidFile ? ['--pid-file', opts.pidFile] : []), id];
    const underScript = opts.tty && !opts.detach;
    const argv = underScript ? this.ttyArgv(this.argv(args, opts.logFile)) : this.argv(args, opts.logFile);
    // `script` turns EOF on its stdin into an EOF character for the pty: with
    // no stdin, give it one that stays open (and silent) until the end.
    const idleStdin = underScript && opts.stdio[0] === 'ignore';
    const stdio: StdioElement[] = idleStdin ? ['pipe', opts.stdio[1], opts.stdio[2]] : [...opts.stdio];
    const child = spawn(argv[0]!, argv.slice(1), { stdio, env: ttyEnv() });
    const cleanup = () => {
      rmSync(file, { force: true });
      if (idleStdin) child.stdin?.destroy();
    };
    child.once('exit', cleanup);
    child.once('error', cleanup);
    return child;
  }

  /** Runs a runtime command to completion; rejects with a typed error unless it exits 0. */
  private async check(what: string, args: string[], input?: string): Promise<string> {
    const r = await this.run(args, input);
    if (r.code !== 0) throw this.error(what, r);
    return r.stdout;
  }

  private run(args: string[], input?: string, withGlobals = true): Promise<RunResult> {
    const argv = withGlobals ? this.argv(args) : [this.path, ...args];
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => err.push(d));
      child.on('error', (e) => reject(new SystemError(`running ${this.name} (${argv[0]}): ${e.message}`, { cause: e })));
      child.on('close', (code, signal) =>
        resolve({ code: code ?? 128 + signalNumber(signal), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
      );
      if (input !== undefined) {
        child.stdin!.on('error', () => undefined);
        child.stdin!.end(input);
      }
    });
  }

  /** The typed error for a failed command, with the runtime's own message. */
  error(what: string, r: { code: number; stderr: string }): SkiffError {
    const msg = lastRuntimeMessage(r.stderr);
    // crun names the missing state directory: "cannot open directory '<root>/<id>': No such file or directory"
    if (msg.includes(this.root) && /no such file or directory/i.test(msg)) return new NotFound(`${this.name} ${what}: ${msg}`);
    return runtimeError(this.name, what, r.code, r.stderr, this.hideUnifiedCgroup);
  }
}

/** The environment for runtime commands run under `script` (it runs $SHELL -c). */
export function ttyEnv(): NodeJS.ProcessEnv {
  return { ...process.env, SHELL: '/bin/sh' };
}

export function shq(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The last error message in a runtime's stderr or log file (JSON log lines or plain text). */
export function lastRuntimeMessage(stderr: string): string {
  let json: string | undefined;
  let plain: string | undefined;
  let errorJson: string | undefined;
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('{')) {
      try {
        const o = JSON.parse(line) as { msg?: unknown; level?: unknown };
        if (typeof o.msg === 'string') {
          json = o.msg;
          if (o.level === 'error' || o.level === 'fatal') errorJson = o.msg;
          continue;
        }
      } catch {
        // not JSON: a plain line
      }
    }
    plain = line;
  }
  return (errorJson ?? json ?? plain ?? '').trim();
}

export function runtimeError(name: string, what: string, code: number, stderr: string, hideUnifiedCgroup = false): SkiffError {
  const msg = lastRuntimeMessage(stderr) || `exit status ${code}`;
  const text = `${name} ${what}: ${msg}`;
  if (/does not exist|container not found|error opening file .*\/status.*no such file/i.test(msg) && !/exec: |executable file/i.test(msg)) {
    return new NotFound(text);
  }
  if (/is not running|is not paused|is paused|not running|cannot (pause|resume|delete|kill)|already (running|paused|exists)|container .* (is )?stopped/i.test(msg)) {
    return new Conflict(text);
  }
  if (stderr.includes(HYBRID_MESSAGE)) {
    return new SystemError(
      `${text}: ${name} does not support this host's hybrid cgroup layout (cgroup v1 controllers plus a cgroup2 mount at ` +
        `${UNIFIED_CGROUP_MOUNT})` +
        (hideUnifiedCgroup
          ? ' even with that mount hidden in a private mount namespace'
          : `; run it in a private mount namespace without that mount (skiff's hideUnifiedCgroup option) or use runc`),
    );
  }
  return new SystemError(text);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SystemError(`${what}: unparsable output ${JSON.stringify(text.slice(0, 200))}`, { cause: err });
  }
}

/** The number of a signal name (SIGTERM → 15); 0 for none or an unknown name. */
export function signalNumber(signal: string | null | undefined): number {
  if (!signal) return 0;
  const name = signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
  const n = (osConstants.signals as Record<string, number>)[name];
  return typeof n === 'number' ? n : 0;
}

/** The name of a signal number (15 → SIGTERM). */
export function signalName(n: number): string | undefined {
  for (const [name, num] of Object.entries(osConstants.signals as Record<string, number>)) if (num === n) return name;
  return undefined;
}
