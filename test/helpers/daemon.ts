// Starting the BUILT x64 executable as a daemon on a private data root and
// socket, and driving it with the real docker CLI or raw HTTP.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository: the nearest folder above this (compiled) file that holds build.mjs. */
export const ROOT = findRoot(fileURLToPath(new URL('.', import.meta.url)));

function findRoot(start: string): string {
  for (let dir = start; dir !== '/'; dir = join(dir, '..')) {
    if (existsSync(join(dir, 'build.mjs'))) return dir;
  }
  throw new Error(`no repository root above ${start}`);
}
export const SKIFF = process.env.SKIFF_BIN ?? join(ROOT, 'dist', 'skiff-linux-x64');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runSync(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, timeout: opts.timeout ?? 60_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Runs a command to its end; `input` is written to its stdin, which is /dev/null otherwise (nothing can prompt). */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string | Buffer } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export interface TestDaemon {
  dir: string;
  dataRoot: string;
  socket: string;
  host: string;
  pidfile: string;
  child: ChildProcess;
  logs(): string;
  /** Resolves with the exit code after SIGTERM (or the given signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  cleanup(): void;
}

export interface DaemonOptions {
  args?: string[];
  config?: Record<string, unknown>;
  dir?: string;
  binary?: string;
  /** Command prefix, e.g. a qemu invocation. */
  prefix?: string[];
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** Run the daemon inside this network namespace (a path under /var/run/netns): its bridges and rules stay there. */
  netns?: string;
}

export function tempDir(prefix = 'skiff-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? tempDir();
  const dataRoot = join(dir, 'root');
  const socket = join(dir, 'skiff.sock');
  const pidfile = join(dir, 'skiff.pid');
  const configFile = join(dir, 'daemon.json');
  writeFileSync(configFile, JSON.stringify(opts.config ?? {}));
  const binary = opts.binary ?? SKIFF;
  // A daemon in the host's namespace must not touch the host's network: no
  // bridge, no iptables rules, no ip_forward (tests of networking pass `netns`).
  const hostNetSafe = opts.netns ? [] : hostNetworkSafeArgs(opts);
  const args = [
    'daemon',
    '--data-root', dataRoot,
    '--host', `unix://${socket}`,
    '--pidfile', pidfile,
    '--config-file', configFile,
    ...hostNetSafe,
    ...(opts.args ?? []),
  ];
  const prefix = [...(opts.netns ? ['nsenter', `--net=${opts.netns}`] : []), ...(opts.prefix ?? [])];
  const [cmd, ...pre] = prefix.length > 0 ? [...prefix, binary] : [binary];
  const child = spawn(cmd as string, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let logs = '';
  child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000);
  while (!(await ping(socket))) {
    if (gone || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not become ready:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    dir,
    dataRoot,
    socket,
    host: `unix://${socket}`,
    pidfile,
    child,
    logs: () => logs,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (!gone) child.kill(signal);
      return (await exited).code;
    },
    cleanup: () => {
      if (!gone) child.kill('SIGKILL');
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** For a daemon a test starts by hand in the host's namespace: no bridge, no iptables rules, no ip_forward. */
export const HOST_NETWORK_SAFE_ARGS = ['--bridge=none', '--iptables=false', '--ip-forward=false'];

function hostNetworkSafeArgs(opts: DaemonOptions): string[] {
  const given = (key: string) => (opts.args ?? []).some((a) => a === `--${key}` || a.startsWith(`--${key}=`)) || key in (opts.config ?? {});
  return HOST_NETWORK_SAFE_ARGS.filter((a) => !given(a.slice(2, a.indexOf('='))));
}

/** True when something answers GET /_ping with 200 on the socket. */
export function ping(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return Promise.resolve(false);
  return rawRequest(socket, 'GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 2000)
    .then((r) => r.startsWith('HTTP/1.1 200'))
    .catch(() => false);
}

/** Sends raw bytes and collects everything until the server closes (or the timeout). */
export function rawRequest(socket: string, data: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      resolve(buf);
    }, timeoutMs);
    c.on('connect', () => c.write(data));
    c.on('data', (d: Buffer) => (buf += d.toString('latin1')));
    c.on('end', () => {
      clearTimeout(timer);
      resolve(buf);
    });
    c.on('close', () => {
      clearTimeout(timer);
      resolve(buf);
    });
    c.on('error', (err) => {
      clearTimeout(timer);
      if (buf) resolve(buf);
      else reject(err);
    });
  });
}

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses the first response of a raw exchange (Content-Length framed). */
export function parseResponse(raw: string): ParsedResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, end).split('\r\n');
  const status = Number((head[0] ?? '').split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  const len = Number(headers['content-length'] ?? '0');
  return { status, headers, body: raw.slice(end + 4, end + 4 + len) };
}

export function docker(host: string, args: string[], timeout = 30_000): Promise<RunResult> {
  return run('docker', ['-H', host, ...args], { timeout, env: { ...process.env, DOCKER_CONFIG: join(tmpdir(), 'skiff-test-docker-config') } });
}

/** The store after a pull, push or load: overlay2 holds exactly the committed layers and no layer is in flight. */
export function assertOnlyCommittedLayers(d: TestDaemon): void {
  const db = join(d.dataRoot, 'layerdb');
  const committed = readdirSync(db)
    .filter((n) => n.endsWith('.json'))
    .map((n) => (JSON.parse(readFileSync(join(db, n), 'utf8')) as { cacheId: string }).cacheId)
    .sort();
  const dirs = readdirSync(join(d.dataRoot, 'overlay2')).filter((n) => n !== 'l').sort();
  assert.deepEqual(dirs, committed, 'overlay2 directories are exactly the committed layers');
  assert.deepEqual(readdirSync(join(db, 'tmp')), [], 'no layer left in flight');
}

/** `skiff check` rebuilds every layer's tar and finds none broken. */
export async function assertCheckClean(d: TestDaemon): Promise<void> {
  const check = await run(SKIFF, ['-H', d.host, 'check']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, / 0 broken/);
}
