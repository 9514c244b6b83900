#!/usr/bin/env node
// Running containers: skiff against dockerd (+ its containerd), both driven
// by the real docker CLI. Plain Node, only tar-stream from node_modules; run
// as root from anywhere:
//
//   node bench/run.mjs [--runs 10] [--warmup 2] [--containers 10] [--bin dist/skiff-linux-x64] [--docker /usr/local/bin/docker]
//
// A busybox image is built from the host's /bin/busybox (busybox-static),
// pushed to a loopback registry and pulled into both daemons. Then:
//   - latency of `docker run --rm busybox true` (--network none on both peers,
//     plus a skiff-only row on its default network), peers taking turns;
//   - idle daemon RSS (skiff; dockerd + containerd);
//   - with N `docker run -d busybox sleep 1000`: daemon RSS and the processes
//     that supervise each container (skiff: monitor sh + runc; dockerd:
//     containerd-shim-runc-v2).
// Prints a table and writes bench/results/run.json. See bench/README.md.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { descendants, makeLayer, manifestOf, MB, procs, pushImage, readOr, REGISTRY_BIN, round, sha256, sleep, startDockerdDaemon, startRegistry, startSkiffDaemon, stopProc, unmountUnder, which } from './lib.mjs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    containers: { type: 'string', default: '10' },
    bin: { type: 'string', default: path.join(ROOT, 'dist', 'skiff-linux-x64') },
    docker: { type: 'string' },
    busybox: { type: 'string', default: '/bin/busybox' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results', 'run.json') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log('usage: node bench/run.mjs [--runs N] [--warmup N] [--containers N] [--bin path/to/skiff-linux-x64] [--docker path/to/docker-cli] [--busybox /bin/busybox] [--out file.json]');
  process.exit(0);
}
const RUNS = Number(opts.runs);
const WARMUP = Number(opts.warmup);
const NCONT = Number(opts.containers);
const SEA = path.resolve(opts.bin);
const OUT = path.resolve(opts.out);
const IDLE_MS = 2000;
const CMD_TIMEOUT_MS = 120_000;
const TARGETS = { latencyVsDockerd: 1.0, idleRssMB: 60 };

for (const [k, v, min] of [['--runs', RUNS, 1], ['--warmup', WARMUP, 0], ['--containers', NCONT, 1]]) {
  if (!Number.isInteger(v) || v < min) {
    console.error(`${k} must be an integer ≥ ${min}`);
    process.exit(2);
  }
}
if (process.getuid?.() !== 0) {
  console.error('run this as root: it starts container daemons');
  process.exit(2);
}


const DOCKER_CLI = opts.docker ?? which('/usr/local/bin/docker', '/usr/bin/docker');
const DOCKERD = which('/usr/bin/dockerd', '/usr/sbin/dockerd');
const CONTAINERD = which('/usr/bin/containerd', '/usr/sbin/containerd');
const BUSYBOX = opts.busybox;
for (const [what, p, hint] of [
  ['skiff executable', existsSync(SEA) ? SEA : undefined, 'build it: node build.mjs --arch x64'],
  ['docker CLI', DOCKER_CLI, 'pass --docker'],
  ['dockerd', DOCKERD, 'apt-get install docker.io (see bench/README.md)'],
  ['containerd', CONTAINERD, 'apt-get install docker.io'],
  ['docker-registry', existsSync(REGISTRY_BIN) ? REGISTRY_BIN : undefined, 'apt-get install docker-registry'],
  ['busybox', existsSync(BUSYBOX) ? BUSYBOX : undefined, 'apt-get install busybox-static'],
]) {
  if (!p) {
    console.error(`${what} not found: ${hint}`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------
// cleanup: everything this script starts is registered here
// ---------------------------------------------------------------------------
// A short base path: unix socket paths must stay under 108 bytes.
const TMP = mkdtempSync(path.join('/tmp', 'skrb-'));
// Left outside TMP by the peers: skiff's exec root /run/skiff/<sha256(data root)[:12]>; the shims' socket dir /run/containerd/s.
const SKIFF_ROOT = path.join(TMP, 'skiff-d', 'root');
const SKIFF_EXEC_ROOT = path.join('/run/skiff', createHash('sha256').update(SKIFF_ROOT).digest('hex').slice(0, 12));
const HAD_RUN_CONTAINERD = existsSync('/run/containerd');
const cmds = new Set(); // docker CLI invocations in flight
const daemons = []; // started peers: { name, socket, stop() }
const containerInits = new Map(); // pid -> cmdline of container inits we made (a last-resort kill)
let cleaning;
let aborted = false;

const cmdlineOf = (pid) => readOr(`/proc/${pid}/cmdline`).split('\0').filter((s, i, a) => s || i < a.length - 1);
const allPids = () => readdirSync('/proc').filter((f) => /^\d+$/.test(f)).map(Number);

/** Kills (by pid) what is left of ours: processes whose command line names our temp dir (monitors, runc, shims) and our container inits. */
function sweep() {
  let n = 0;
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const cl = readOr(`/proc/${pid}/cmdline`);
    if (cl.includes(TMP + '/') || (containerInits.has(pid) && containerInits.get(pid) === cl)) {
      try {
        process.kill(pid, 'SIGKILL');
        n++;
      } catch {}
    }
  }
  return n;
}

function removeOutside() {
  rmSync(SKIFF_EXEC_ROOT, { recursive: true, force: true });
  if (!HAD_RUN_CONTAINERD) {
    for (const dir of ['/run/containerd/s', '/run/containerd']) {
      try {
        if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
      } catch {}
    }
  }
}

async function cleanup() {
  cleaning ??= (async () => {
    for (const c of cmds) c.kill('SIGKILL');
    // Containers first (skiff's outlive its daemon by design), then the daemons, newest first.
    const say = (msg) => console.error(`  cleanup: ${msg}`);
    for (const d of [...daemons].reverse()) {
      let t = Date.now();
      try {
        const n = await removeAll(d, 30_000);
        say(`${d.name}: removed ${n} container(s) in ${Date.now() - t} ms`);
      } catch (err) {
        say(`${d.name}: removing containers failed after ${Date.now() - t} ms: ${err.message}`);
      }
      t = Date.now();
      await d.stop().catch(() => {});
      const ms = Date.now() - t;
      say(`${d.name}: stopped in ${ms} ms`);
      if (ms > 5000) say(`${d.name} was slow to stop; the end of its log:\n${d.log().trim().split('\n').slice(-8).join('\n')}`);
    }
    for (const c of [...procs].reverse()) await stopProc(c, 5000);
    if (sweep() > 0) await sleep(300);
    unmountUnder(TMP);
    rmSync(TMP, { recursive: true, force: true });
    removeOutside();
  })();
  return cleaning;
}
process.on('exit', () => {
  for (const c of [...procs, ...cmds]) c.kill('SIGKILL');
  if (existsSync(TMP)) {
    sweep();
    unmountUnder(TMP);
    rmSync(TMP, { recursive: true, force: true });
    removeOutside();
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (aborted) return;
    aborted = true;
    console.error(`\n${sig}: removing containers, stopping the daemons and the registry...`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Spawns a long-running helper in its own process group (Ctrl-C reaches only us), logging to a buffer. */
/** Runs a command to its end (own process group, killed after a timeout); resolves { code, stdout, stderr, ms }. */
function run(cmd, args, { env, timeoutMs = CMD_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: env ?? process.env });
    cmds.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      cmds.delete(child);
      resolve({ code, stdout, stderr, ms });
    };
    child.on('error', (e) => {
      stderr += e.message;
      finish(-1);
    });
    child.on('close', (code, signal) => finish(code ?? signal));
  });
}

/** Polls until check() holds; if the process exits or time runs out, stops it and throws with its log. */
// ---------------------------------------------------------------------------
// the image: one layer, /bin/busybox and its applet links
// ---------------------------------------------------------------------------
const APPLETS = [
  'sh', 'ash', 'ls', 'cat', 'echo', 'true', 'false', 'env', 'id', 'uname', 'hostname', 'mkdir', 'rm', 'rmdir',
  'cp', 'mv', 'ln', 'chmod', 'chown', 'touch', 'sleep', 'ps', 'kill', 'grep', 'sed', 'awk', 'head', 'tail',
  'wc', 'sort', 'uniq', 'tr', 'cut', 'find', 'xargs', 'tar', 'gzip', 'gunzip', 'wget', 'vi', 'date', 'df',
  'du', 'mount', 'umount', 'ping', 'test', 'printf', 'pwd', 'which', 'whoami', 'yes', 'top', 'ip',
];
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n';
const GROUP = 'root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n';

async function buildBusybox() {
  const busybox = readFileSync(BUSYBOX);
  const layer = await makeLayer([
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', data: busybox, mode: 0o755 },
    ...APPLETS.map((a) => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', data: Buffer.from(PASSWD) },
    { name: 'etc/group', data: Buffer.from(GROUP) },
    { name: 'root/', type: 'directory', mode: 0o700 },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
  ]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      created: '2023-11-14T22:13:20Z',
      history: [{ created: '2023-11-14T22:13:20Z', created_by: `skiff run benchmark: ${BUSYBOX}` }],
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    }),
  );
  const manifest = manifestOf(config, [layer]);

  return { layer, layers: [layer], config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest), busyboxBytes: busybox.length };
}

// ---------------------------------------------------------------------------
// the registry: Debian's docker-registry on 127.0.0.1:<random>, temp storage
// ---------------------------------------------------------------------------
// ---------------------------------------------------------------------------
// /proc: process trees and memory
// ---------------------------------------------------------------------------
/** Live descendants of pid (through every thread's `children` list). */
/** Memory of one process in bytes: VmRSS, RssAnon (status) and Pss, Private_Clean+Private_Dirty (smaps_rollup). */
function memOf(pid) {
  const status = readOr(`/proc/${pid}/status`);
  const rollup = readOr(`/proc/${pid}/smaps_rollup`);
  const kib = (text, k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return {
    rss: kib(status, 'VmRSS'),
    anon: kib(status, 'RssAnon'),
    pss: kib(rollup, 'Pss'),
    priv: kib(rollup, 'Private_Clean') + kib(rollup, 'Private_Dirty'),
  };
}
function memSum(pids) {
  const s = { rss: 0, anon: 0, pss: 0, priv: 0 };
  for (const p of pids) {
    const m = memOf(p);
    for (const k of Object.keys(s)) s[k] += m[k];
  }
  return s;
}
const toMB = (m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v / MB, 2)]));
const procName = (pid) => path.basename(cmdlineOf(pid)[0] ?? readOr(`/proc/${pid}/comm`).trim());

// ---------------------------------------------------------------------------
// peers
// ---------------------------------------------------------------------------
const cliDir = path.join(TMP, 'docker-cli');
mkdirSync(cliDir, { recursive: true });
writeFileSync(path.join(cliDir, 'config.json'), '{}');
const cliEnv = { ...process.env, DOCKER_CONFIG: cliDir };
const docker = (d, args, o = {}) => run(DOCKER_CLI, ['-H', `unix://${d.socket}`, ...args], { env: cliEnv, ...o });

/** `docker rm -f` of every container of a peer. */
async function removeAll(d, timeoutMs = CMD_TIMEOUT_MS) {
  const ps = await docker(d, ['ps', '-aq', '--no-trunc'], { timeoutMs });
  const ids = ps.stdout.trim().split('\n').filter(Boolean);
  if (ids.length === 0) return 0;
  const r = await docker(d, ['rm', '-f', ...ids], { timeoutMs });
  if (r.code !== 0) throw new Error(`docker rm -f: ${r.stderr.trim()}`);
  return ids.length;
}

// The executable is copied first: a rebuild during the benchmark must not change what is measured.
const SEA_COPY = path.join(TMP, 'skiff');
copyFileSync(SEA, SEA_COPY);
const SEA_SHA256 = createHash('sha256').update(readFileSync(SEA_COPY)).digest('hex');

async function startSkiff() {
  const d = await startSkiffDaemon(SEA_COPY, path.join(TMP, 'skiff-d'), SKIFF_ROOT);
  daemons.push(d);
  return d;
}

async function startDockerd() {
  const d = await startDockerdDaemon(DOCKERD, CONTAINERD, path.join(TMP, 'dockerd'));
  daemons.push(d);
  return d;
}

/** Processes that supervise container `id` (not the container's own): skiff's monitor sh and what it runs; dockerd's shim. */
function supervisors(peer, id, initPid) {
  const inContainer = new Set([initPid, ...descendants(initPid)]);
  const found = [];
  for (const pid of allPids()) {
    const args = cmdlineOf(pid);
    if (peer === 'skiff') {
      // sh -c SCRIPT skiff-monitor ID DIR TTY runtime...
      const i = args.indexOf('skiff-monitor');
      if (i > 0 && args[i + 1] === id) found.push(pid, ...[...descendants(pid)].filter((p) => !inContainer.has(p)));
    } else if (path.basename(args[0] ?? '').startsWith('containerd-shim') && args.includes(id)) {
      found.push(pid, ...[...descendants(pid)].filter((p) => !inContainer.has(p)));
    }
  }
  return [...new Set(found)];
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------
function builtCommit() {
  const out = spawnSync(SEA_COPY, ['version'], { encoding: 'utf8' }).stdout ?? '';
  return /Git commit:\s+(\S+)/.exec(out)?.[1];
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const p90 = s[Math.ceil(0.9 * s.length) - 1]; // nearest rank
  return { median: round(median, 1), min: round(s[0], 1), p90: round(p90, 1), max: round(s[s.length - 1], 1), n: s.length };
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '-').length)));
  return rows
    .map((r, n) => r.map((c, i) => (i === 0 ? String(c ?? '-').padEnd(widths[i]) : String(c ?? '-').padStart(widths[i]))).join('  ') + (n === 0 ? '\n' + widths.map((w) => '-'.repeat(w)).join('  ') : ''))
    .join('\n');
}

function daemonMem(d) {
  const tree = [...new Set(d.roots.flatMap((r) => [...descendants(r)]))].filter((p) => !d.roots.includes(p));
  return { daemon: memSum(d.roots), descendants: tree.length, descendantNames: [...new Set(tree.map(procName))] };
}

const notes = [];

async function main() {
  const img = await buildBusybox();
  console.log(`image: ${BUSYBOX} (${round(img.busyboxBytes / MB, 2)} MB) + ${APPLETS.length} applet links: one layer, ${round(img.layer.tarSize / MB, 2)} MB tar, ${round(img.layer.size / MB, 2)} MB gzip`);
  const registry = await startRegistry(TMP);
  await pushImage(registry.url, 'bench/busybox', 'latest', img);
  const ref = `${registry.host}/bench/busybox:latest`;
  console.log(`registry: ${REGISTRY_BIN} on ${registry.host}; pushed ${ref}`);
  console.log(`skiff: a copy of ${path.relative(ROOT, SEA) || SEA} (sha256 ${SEA_SHA256.slice(0, 12)}, built from ${builtCommit() ?? 'unknown commit'}); docker CLI ${DOCKER_CLI}`);
  const la = os.loadavg();
  if (la[0] > os.cpus().length * 0.5) notes.push(`load average ${la.map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs at the start: other work on the machine disturbs the latencies`);

  // --- start both daemons, idle RSS ---------------------------------------
  const skiff = await startSkiff();
  const dockerd = await startDockerd();
  const peers = { skiff, dockerd };
  await sleep(IDLE_MS);
  const idle = {};
  for (const d of Object.values(peers)) {
    idle[d.name] = { readyMs: d.readyMs, ...daemonMem(d), perProcess: Object.fromEntries(d.roots.map((p) => [procName(p), toMB(memOf(p))])) };
    console.log(`${d.name}: ready in ${d.readyMs} ms; idle RSS ${round(idle[d.name].daemon.rss / MB)} MB (anon ${round(idle[d.name].daemon.anon / MB)}, private ${round(idle[d.name].daemon.priv / MB)})`);
  }

  // --- pull ---------------------------------------------------------------
  for (const d of Object.values(peers)) {
    const p = await docker(d, ['pull', ref]);
    if (p.code !== 0) throw new Error(`${d.name}: docker pull ${ref} exited ${p.code}: ${p.stderr.trim()}\n--- daemon log ---\n${d.log().slice(-2000)}`);
    const t = await docker(d, ['tag', ref, 'busybox']);
    if (t.code !== 0) throw new Error(`${d.name}: docker tag: ${t.stderr.trim()}`);
    const id = (await docker(d, ['image', 'inspect', '--format', '{{.Id}}', 'busybox'])).stdout.trim();
    if (id !== img.configDigest) notes.push(`${d.name}: image ID ${id}, expected ${img.configDigest}`);
    console.log(`${d.name}: pulled in ${round(p.ms / 1000, 2)} s`);
  }

  // --- latency ------------------------------------------------------------
  const rows = [
    { key: 'skiff', peer: skiff, network: 'none', args: ['--network', 'none'] },
    { key: 'dockerd', peer: dockerd, network: 'none', args: ['--network', 'none'] },
    { key: 'skiff-default-net', peer: skiff, network: 'default', args: [] },
  ];
  const lat = Object.fromEntries(rows.map((r) => [r.key, { samples: [], failures: [] }]));
  const once = async (r) => {
    const res = await docker(r.peer, ['run', '--rm', ...r.args, 'busybox', 'true']);
    if (res.code !== 0) {
      lat[r.key].failures.push(`exit ${res.code}: ${res.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return undefined;
    }
    return res.ms;
  };
  console.log(`\nlatency: docker run --rm busybox true, ${WARMUP} warm-up(s) then ${RUNS} runs per row, rows taking turns in a rotating order`);
  for (let i = 0; i < WARMUP && !aborted; i++) for (const r of rows) await once(r);
  for (const r of rows) lat[r.key].failures.length = 0; // warm-up failures are reported only if the timed runs fail too
  for (let i = 0; i < RUNS && !aborted; i++) {
    const line = [];
    for (let j = 0; j < rows.length && !aborted; j++) {
      const r = rows[(i + j) % rows.length];
      const ms = await once(r);
      if (ms !== undefined) lat[r.key].samples.push(ms);
      line.push(`${r.key} ${ms === undefined ? 'FAILED' : `${ms.toFixed(0)} ms`}`);
    }
    console.log(`  run ${String(i + 1).padStart(2)}/${RUNS}: ${line.join(', ')}`);
  }
  if (aborted) return;
  for (const r of rows) {
    lat[r.key].stats = stats(lat[r.key].samples);
    for (const f of lat[r.key].failures) notes.push(`${r.key}: docker run failed: ${f}`);
  }
  for (const d of Object.values(peers)) {
    const left = (await docker(d, ['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (left.length) notes.push(`${d.name}: ${left.length} container(s) left after the --rm runs`);
  }
  const latRatio = lat.skiff.stats && lat.dockerd.stats ? round(lat.skiff.stats.median / lat.dockerd.stats.median, 2) : undefined;
  const latRatioMin = lat.skiff.stats && lat.dockerd.stats ? round(lat.skiff.stats.min / lat.dockerd.stats.min, 2) : undefined;

  // --- N running containers, one peer after the other ----------------------
  const running = {};
  for (const d of [skiff, dockerd]) {
    if (aborted) return;
    const before = daemonMem(d);
    const ids = [];
    for (let i = 0; i < NCONT; i++) {
      const r = await docker(d, ['run', '-d', '--network', 'none', 'busybox', 'sleep', '1000']);
      if (r.code !== 0) throw new Error(`${d.name}: docker run -d exited ${r.code}: ${r.stderr.trim()}\n--- daemon log ---\n${d.log().slice(-2000)}`);
      ids.push(r.stdout.trim());
    }
    const insp = await docker(d, ['inspect', '--format', '{{.Id}} {{.State.Pid}} {{.State.Running}}', ...ids]);
    const inits = new Map(insp.stdout.trim().split('\n').map((l) => l.split(' ')).map(([id, pid, up]) => [id, { pid: Number(pid), up: up === 'true' }]));
    for (const { pid } of inits.values()) if (pid > 0) containerInits.set(pid, readOr(`/proc/${pid}/cmdline`));
    await sleep(IDLE_MS);
    const after = daemonMem(d);
    const per = [];
    for (const id of ids) {
      const init = inits.get(id) ?? { pid: 0, up: false };
      const pids = supervisors(d.name, id, init.pid);
      per.push({ id: id.slice(0, 12), initPid: init.pid, running: init.up, processes: pids.map((p) => ({ pid: p, name: procName(p), ...toMB(memOf(p)) })), ...memSum(pids) });
    }
    const sum = (k) => per.reduce((n, c) => n + c[k], 0);
    const nRunning = per.filter((c) => c.running).length;
    if (nRunning !== NCONT) notes.push(`${d.name}: only ${nRunning}/${NCONT} containers were running when measured`);
    const procsPer = per.map((c) => c.processes.length);
    running[d.name] = {
      daemonBefore: toMB(before.daemon),
      daemonAfter: toMB(after.daemon),
      daemonGrowthPerContainerMB: round((after.daemon.rss - before.daemon.rss) / NCONT / MB, 2),
      daemonDescendants: after.descendants,
      daemonDescendantNames: after.descendantNames,
      perContainerMB: { rss: round(sum('rss') / NCONT / MB, 2), private: round(sum('priv') / NCONT / MB, 2), pss: round(sum('pss') / NCONT / MB, 2), anon: round(sum('anon') / NCONT / MB, 2) },
      processesPerContainer: { min: Math.min(...procsPer), max: Math.max(...procsPer), names: [...new Set(per.flatMap((c) => c.processes.map((p) => p.name)))] },
      containers: per.map(({ rss, anon, pss, priv, ...c }) => ({ ...c, rssMB: round(rss / MB, 2), privateMB: round(priv / MB, 2) })),
    };
    const t0 = Date.now();
    await removeAll(d);
    running[d.name].rmAllMs = Date.now() - t0;
    console.log(
      `${d.name}: ${NCONT} containers: daemon RSS ${round(after.daemon.rss / MB)} MB (was ${round(before.daemon.rss / MB)}); per container ` +
        `${running[d.name].perContainerMB.rss} MB RSS / ${running[d.name].perContainerMB.private} MB private in ${running[d.name].processesPerContainer.names.join('+')}; rm -f of all: ${running[d.name].rmAllMs} ms`,
    );
    await sleep(500);
    if (d === skiff) {
      const netns = ids.filter((id) => existsSync(`/run/netns/skiff-${id.slice(0, 12)}`));
      if (netns.length) notes.push(`skiff: ${netns.length} network namespace(s) /run/netns/skiff-<id> left after docker rm -f`);
    }
    const leftovers = allPids().filter((p) => containerInits.has(p) && readOr(`/proc/${p}/cmdline`) === containerInits.get(p));
    if (leftovers.length) notes.push(`${d.name}: ${leftovers.length} container process(es) still alive 0.5 s after docker rm -f`);
  }

  // --- report -------------------------------------------------------------
  const f1 = (x) => (x === undefined ? '-' : Number(x).toFixed(1));
  const f2 = (x) => (x === undefined ? '-' : Number(x).toFixed(2));
  console.log(`\nLatency of \`docker run --rm busybox true\` (ms, wall time of the docker CLI; ${RUNS} runs after ${WARMUP} warm-ups)`);
  const latRows = [['peer', 'network', 'runs', 'median', 'min', 'p90', 'max', 'vs dockerd (median)']];
  for (const r of rows) {
    const s = lat[r.key].stats;
    latRows.push([r.key === 'skiff-default-net' ? 'skiff' : r.key, r.network, `${lat[r.key].samples.length}/${RUNS}`, f1(s?.median), f1(s?.min), f1(s?.p90), f1(s?.max), s && lat.dockerd.stats ? `${(s.median / lat.dockerd.stats.median).toFixed(2)}×` : '-']);
  }
  console.log(table(latRows));

  console.log(`\nMemory (MB = 10^6 bytes; skiff = its daemon process; dockerd = dockerd + containerd)`);
  const memRows = [['peer', 'idle RSS', '(anon)', '(private)', 'RSS after runs', `RSS, ${NCONT} running`, 'growth/ctr', 'supervisor RSS/ctr', 'private/ctr', 'PSS/ctr', 'processes/ctr']];
  for (const name of ['skiff', 'dockerd']) {
    const i = idle[name];
    const r = running[name];
    memRows.push([
      name,
      f1(i.daemon.rss / MB),
      f1(i.daemon.anon / MB),
      f1(i.daemon.priv / MB),
      f1(r?.daemonBefore.rss),
      f1(r?.daemonAfter.rss),
      f2(r?.daemonGrowthPerContainerMB),
      f2(r?.perContainerMB.rss),
      f2(r?.perContainerMB.private),
      f2(r?.perContainerMB.pss),
      r ? `${r.processesPerContainer.min === r.processesPerContainer.max ? r.processesPerContainer.min : `${r.processesPerContainer.min}-${r.processesPerContainer.max}`} (${r.processesPerContainer.names.join('+')})` : '-',
    ]);
  }
  console.log(table(memRows));
  console.log(
    `RSS after runs: after the ${rows.length * (WARMUP + RUNS)} \`docker run --rm\` of the latency test, no container running; growth/ctr: (RSS with ${NCONT} running - that) / ${NCONT}.\n` +
    'supervisor = skiff: the monitor sh and the foreground runtime under it; dockerd: the containerd-shim-runc-v2 of the container (the container\'s own\n' +
      'processes excluded). RSS counts shared pages (libc, the runtime\'s text) in every process; private = Private_Clean+Private_Dirty of smaps_rollup.',
  );

  const verdict = (v, limit) => (v === undefined ? 'n/a' : v <= limit ? 'PASS' : 'FAIL');
  const idleSkiffMB = round(idle.skiff.daemon.rss / MB, 1);
  const targets = [
    { target: `docker run latency ≤ ${TARGETS.latencyVsDockerd.toFixed(1)}× dockerd (medians, --network none)`, value: latRatio, limit: TARGETS.latencyVsDockerd, result: verdict(latRatio, TARGETS.latencyVsDockerd) },
    { target: `idle daemon RSS ≤ ${TARGETS.idleRssMB} MB`, value: idleSkiffMB, limit: TARGETS.idleRssMB, result: verdict(idleSkiffMB, TARGETS.idleRssMB) },
  ];
  // Shutdown: SIGTERM with nothing left to do (no containers), as an init script would send it.
  const shutdown = {};
  for (const d of [dockerd, skiff]) {
    await removeAll(d).catch(() => {});
    const t = Date.now();
    await d.stop();
    daemons.splice(daemons.indexOf(d), 1);
    shutdown[d.name] = { ms: Date.now() - t };
    const stuck = /cancelling requests still running at shutdown.*count=(\d+)/.exec(d.log());
    if (stuck) {
      shutdown[d.name].requestsStillRunning = Number(stuck[1]);
      notes.push(`${d.name}: SIGTERM took ${shutdown[d.name].ms} ms: its log says "cancelling requests still running at shutdown" count=${stuck[1]}`);
    }
  }
  if (existsSync(SKIFF_EXEC_ROOT)) {
    const left = spawnSync('find', [SKIFF_EXEC_ROOT], { encoding: 'utf8' }).stdout.trim().split('\n').length;
    shutdown.skiff.execRootLeft = SKIFF_EXEC_ROOT;
    notes.push(`skiff: its exec root ${SKIFF_EXEC_ROOT} (${left} entries) is still there after it exited (removed by this script)`);
  }
  console.log(`\nshutdown (SIGTERM, no containers left): ${Object.entries(shutdown).map(([k, v]) => `${k} ${v.ms} ms`).join(', ')}`);

  console.log('\nskiff against the targets');
  console.log(table([['target', 'skiff', 'result'], ...targets.map((x) => [x.target, x.value === undefined ? '-' : x.value.toFixed(2), x.result])]));
  for (const n of notes) console.log(`note: ${n}`);

  const ver = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.trim().split('\n')[0];
  const results = {
    date: new Date().toISOString(),
    gitCommit: spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || undefined,
    host: { node: process.version, kernel: os.release(), arch: os.arch(), cpu: os.cpus()[0]?.model, cpus: os.cpus().length, memTotalMiB: Math.round(os.totalmem() / 2 ** 20), loadavgAtStart: la },
    versions: {
      skiff: ver(SEA_COPY, ['--version']),
      skiffBinary: { path: SEA, bytes: statSync(SEA_COPY).size, sha256: SEA_SHA256, builtCommit: builtCommit() },
      dockerd: ver(DOCKERD, ['--version']),
      containerd: ver(CONTAINERD, ['--version']),
      runc: ver('runc', ['--version']),
      dockerCli: ver(DOCKER_CLI, ['--version']),
      busybox: BUSYBOX,
    },
    settings: { runs: RUNS, warmup: WARMUP, containers: NCONT, idleMs: IDLE_MS, units: 'ms; MB = 1e6 bytes', dockerdFlags: '--iptables=false --bridge=none' },
    image: { ref, manifestDigest: img.manifestDigest, configDigest: img.configDigest, layer: { digest: img.layer.digest, diffId: img.layer.diffId, tarBytes: img.layer.tarSize, gzipBytes: img.layer.size } },
    latency: {
      command: 'docker run --rm [--network none] busybox true',
      rows: Object.fromEntries(rows.map((r) => [r.key, { peer: r.peer.name, network: r.network, ...lat[r.key].stats, samplesMs: lat[r.key].samples.map((x) => round(x, 2)), failures: lat[r.key].failures }])),
      ratioSkiffVsDockerdMedian: latRatio,
      ratioSkiffVsDockerdMin: latRatioMin,
    },
    idle: Object.fromEntries(Object.entries(idle).map(([k, v]) => [k, { readyMs: v.readyMs, daemonMB: toMB(v.daemon), perProcessMB: v.perProcess, descendants: v.descendants }])),
    running,
    shutdown,
    targets,
    notes,
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), OUT) || OUT}`);
}

try {
  await main();
} catch (err) {
  if (!aborted) {
    console.error(err?.stack ?? err);
    process.exitCode = 1;
  }
} finally {
  if (!aborted) await cleanup();
}
