#!/usr/bin/env node
// Pull of a multi-MB image from a loopback registry: skiff against dockerd
// (+ its containerd) and skopeo, with GNU tar as the floor for bytes written. Plain Node, only undici and tar-stream from
// node_modules; run as root from anywhere:
//
//   node bench/pull.mjs [--runs 5] [--bin dist/skiff-linux-x64] [--peers skiff,dockerd,skopeo,tar]
//
// Prints a table and writes the figures to bench/results/pull.json.
// See bench/README.md for what each figure means and how it is measured.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { descendants, makeLayer, manifestOf, MB, procs, pushImage, readOr, REGISTRY_BIN, round, sha256, sleep, startDockerdDaemon, startRegistry, startSkiffDaemon, stopProc, unmountUnder, which } from './lib.mjs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    bin: { type: 'string', default: path.join(ROOT, 'dist', 'skiff-linux-x64') },
    peers: { type: 'string', default: 'skiff,dockerd,skopeo,tar' },
    docker: { type: 'string' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results', 'pull.json') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log('usage: node bench/pull.mjs [--runs N] [--bin path/to/skiff-linux-x64] [--peers skiff,dockerd,skopeo,tar] [--docker path/to/docker-cli] [--out file.json]');
  process.exit(0);
}
const RUNS = Number(opts.runs);
const SEA = path.resolve(opts.bin);
const WANTED = new Set(opts.peers.split(',').map((s) => s.trim()).filter(Boolean));
const OUT = path.resolve(opts.out);
const RSS_EVERY_MS = 20;
const DIRTY_EVERY_MS = 50;
const TREE_EVERY_MS = 100;
const SETTLE_MS = 1000;
const TARGETS = { wallVsDockerd: 0.8, rssMB: 80, writtenPerStored: 1.05, dirtyMiB: 8 };

if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error('--runs must be a positive integer');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('run this as root: it starts daemons, drops the page cache and reads /proc/<pid>/io');
  process.exit(2);
}

const MiB = 2 ** 20;

// ---------------------------------------------------------------------------
// cleanup: every process and temp dir this script makes is registered here
// ---------------------------------------------------------------------------
// A short base path: unix socket paths must stay under 108 bytes.
const TMP = mkdtempSync(path.join('/tmp', 'skpb-'));
let cleaning;
let aborted = false;

async function cleanup() {
  cleaning ??= (async () => {
    // Newest first: dockerd before its containerd, daemons before the registry.
    for (const c of [...procs].reverse()) await stopProc(c, 5000);
    unmountUnder(TMP);
    rmSync(TMP, { recursive: true, force: true });
  })();
  return cleaning;
}
process.on('exit', () => {
  for (const c of procs) c.kill('SIGKILL');
  if (existsSync(TMP)) {
    unmountUnder(TMP);
    rmSync(TMP, { recursive: true, force: true });
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    aborted = true;
    console.error(`\n${sig}: stopping everything this benchmark started...`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Spawns a long-running helper in its own process group (Ctrl-C reaches only us), logging to a buffer. */
function run(cmd, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ code: -1, out: `${out}${e.message}`, pid: child.pid }));
    child.on('exit', (code, signal) => resolve({ code: code ?? signal, out, pid: child.pid }));
  });
}

/** Polls until check() holds; if the process exits or time runs out, stops it and throws with its log. */
// ---------------------------------------------------------------------------
// the image: 2 deterministic layers, ~61 MB of tar, ~21 MB of gzip
// ---------------------------------------------------------------------------
/** Deterministic pseudo-random bytes (shake256 of a seed). */
const prng = (n, seed) => createHash('shake256', { outputLength: n }).update(seed).digest();

/** Bytes from an 8-symbol alphabet: random-looking but compressible to about 45 %. */
function binaryish(n, seed) {
  const b = prng(n, seed);
  for (let i = 0; i < n; i++) b[i] = 0x30 + (b[i] & 0x07);
  return b;
}

const WORDS = (() => {
  const r = prng(2500, 'skiff-bench-words');
  const letters = 'etaoinshrdlucmfwypvbgkqjxz';
  const words = [];
  for (let i = 0; i < r.length; i += 5) {
    const len = 2 + (r[i] % 8);
    let w = '';
    for (let j = 0; j < len; j++) w += letters[(r[(i + j + 1) % r.length] * 7 + j) % (j % 2 ? 26 : 9)];
    words.push(w);
  }
  return words; // 500 words
})();

/** Text-like bytes: lines of pseudo-randomly chosen words, like logs or source. */
function textish(n, seed) {
  const r = prng(Math.ceil(n / 3) + 16, seed);
  const parts = [];
  let size = 0;
  let k = 0;
  let col = 0;
  while (size < n) {
    const w = WORDS[((r[k % r.length] << 8) | r[(k + 1) % r.length]) % WORDS.length];
    k += 2;
    const sep = col > 60 ? '\n' : ' ';
    col = sep === '\n' ? 0 : col + w.length + 1;
    parts.push(w, sep);
    size += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}


async function buildImage() {
  // Layer 1 (~21 MB tar): 2400 small files (1-8 KiB, half binary-ish, half text) in 40 directories, plus 4 large binary-ish files.
  const l1 = [{ name: 'opt/', type: 'directory' }, { name: 'opt/app/', type: 'directory' }, { name: 'opt/app/lib/', type: 'directory' }];
  const sizes = prng(2400 * 2, 'skiff-bench-sizes');
  for (let d = 0; d < 40; d++) {
    l1.push({ name: `opt/app/lib/m${d}/`, type: 'directory' });
    for (let f = 0; f < 60; f++) {
      const i = d * 60 + f;
      const size = 1024 + (((sizes[2 * i] << 8) | sizes[2 * i + 1]) % 7168);
      const data = i % 2 ? binaryish(size, `small-${i}`) : textish(size, `small-${i}`);
      l1.push({ name: `opt/app/lib/m${d}/f${f}.${i % 2 ? 'bin' : 'txt'}`, data });
    }
  }
  l1.push({ name: 'opt/app/data/', type: 'directory' });
  for (let i = 0; i < 4; i++) l1.push({ name: `opt/app/data/blob${i}.dat`, data: binaryish(2_500_000, `big-${i}`) });
  // Layer 2 (~40 MB tar): 200 text files of 200 kB.
  const l2 = [{ name: 'usr/', type: 'directory' }, { name: 'usr/share/', type: 'directory' }, { name: 'usr/share/doc/', type: 'directory' }];
  for (let d = 0; d < 10; d++) {
    l2.push({ name: `usr/share/doc/p${d}/`, type: 'directory' });
    for (let f = 0; f < 20; f++) l2.push({ name: `usr/share/doc/p${d}/README${f}.txt`, data: textish(200_000, `text-${d}-${f}`) });
  }
  const layers = [await makeLayer(l1), await makeLayer(l2)];
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      created: '2023-11-14T22:13:20Z',
      history: layers.map(() => ({ created: '2023-11-14T22:13:20Z', created_by: 'skiff pull benchmark' })),
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const manifest = manifestOf(config, layers);

  return { layers, config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest) };
}

// ---------------------------------------------------------------------------
// the registry: Debian's docker-registry on 127.0.0.1:<random>, temp storage
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// /proc: process trees, CPU, I/O, RSS, dirty pages
// ---------------------------------------------------------------------------
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Live descendants of pid (through every thread's `children` list). */
const treeOf = (roots) => [...new Set([...roots, ...roots.flatMap((r) => [...descendants(r)])])];

/** CPU seconds of a process: own utime+stime plus its reaped children's (cutime+cstime). */
function cpuOf(pid) {
  const s = readOr(`/proc/${pid}/stat`);
  if (!s) return 0;
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** /proc/<pid>/io: counts reaped children too (Linux adds them on wait). */
function ioOf(pid) {
  const s = readOr(`/proc/${pid}/io`);
  const v = (k) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(s)?.[1] ?? 0);
  return { write: v('write_bytes'), cancelled: v('cancelled_write_bytes'), read: v('read_bytes') };
}

/** VmRSS and its private part RssAnon, in bytes. */
function rssOf(pid) {
  const s = readOr(`/proc/${pid}/status`);
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), anon: kib('RssAnon') };
}

function counters(roots) {
  const tree = treeOf(roots);
  let cpu = 0;
  const io = { write: 0, cancelled: 0, read: 0 };
  for (const p of tree) {
    cpu += cpuOf(p);
    const x = ioOf(p);
    io.write += x.write;
    io.cancelled += x.cancelled;
    io.read += x.read;
  }
  return { cpu, io };
}

function dirtyBytes() {
  const m = readOr('/proc/meminfo');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(m)?.[1] ?? 0);
  return (kib('Dirty') + kib('Writeback')) * 1024;
}

/** Samples the tree's summed RSS every 20 ms and Dirty+Writeback every 50 ms until stopped. */
function startSampling(roots) {
  let tree = treeOf(roots);
  let peakRss = 0;
  let peakRssRoots = 0;
  let peakAnon = 0;
  let peakDirty = 0;
  const rss = () => {
    let sum = 0;
    let rootsSum = 0;
    let anon = 0;
    for (const p of tree) {
      const r = rssOf(p);
      sum += r.rss;
      anon += r.anon;
      if (roots.includes(p)) rootsSum += r.rss;
    }
    peakRss = Math.max(peakRss, sum);
    peakRssRoots = Math.max(peakRssRoots, rootsSum);
    peakAnon = Math.max(peakAnon, anon);
  };
  const dirty = () => (peakDirty = Math.max(peakDirty, dirtyBytes()));
  rss();
  dirty();
  const timers = [
    setInterval(rss, RSS_EVERY_MS),
    setInterval(dirty, DIRTY_EVERY_MS),
    setInterval(() => (tree = treeOf(roots)), TREE_EVERY_MS),
  ];
  return {
    /** Adds processes found later (e.g. a command's own pid). */
    add: (pid) => roots.push(pid),
    stop: () => {
      rss();
      dirty();
      timers.forEach(clearInterval);
      return { peakRss, peakRssRoots, peakAnon, peakDirty };
    },
  };
}

/** Bytes under paths: apparent sizes (du -sb), or with `allocated` the disk blocks they use (du -s). */
function duBytes(paths, allocated = false) {
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length === 0) return 0;
  const r = spawnSync('du', [allocated ? '-sc' : '-sbc', '--block-size=1', ...existing], { encoding: 'utf8' });
  return Number(/^(\d+)\s+total$/m.exec(r.stdout)?.[1] ?? NaN);
}

function dropCaches() {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// peers
// ---------------------------------------------------------------------------
const DOCKER_CLI = opts.docker ?? which('/usr/local/bin/docker', '/usr/bin/docker');
const DOCKERD = which('/usr/bin/dockerd', '/usr/sbin/dockerd');
const CONTAINERD = which('/usr/bin/containerd', '/usr/sbin/containerd');
const SKOPEO = which('/usr/bin/skopeo', '/usr/local/bin/skopeo');
const notes = [];
const dockerConfigDir = path.join(TMP, 'docker-cli');
mkdirSync(dockerConfigDir, { recursive: true });
writeFileSync(path.join(dockerConfigDir, 'config.json'), '{}');
const cliEnv = { ...process.env, DOCKER_CONFIG: dockerConfigDir };

/** A docker-CLI peer: start() gives { socket, roots (pids to measure), dataDirs, stop() }. */
const peers = [];

// The executable is copied first: a rebuild during the benchmark must not change what is measured.
let SEA_COPY;
let SEA_SHA256;
if (WANTED.has('skiff')) {
  if (!existsSync(SEA)) {
    console.error(`${SEA} does not exist: build it first with  node build.mjs --arch x64`);
    process.exit(2);
  }
  SEA_COPY = path.join(TMP, 'skiff');
  copyFileSync(SEA, SEA_COPY);
  SEA_SHA256 = createHash('sha256').update(readFileSync(SEA_COPY)).digest('hex');
  peers.push({
    name: 'skiff',
    what: `${path.relative(ROOT, SEA) || SEA} daemon`,
    start: (dir) => startSkiffDaemon(SEA_COPY, dir),
  });
}

if (WANTED.has('dockerd')) {
  if (!DOCKERD || !CONTAINERD) {
    const msg =
      'dockerd/containerd not installed: dockerd is skipped. To add it as a peer (Debian\'s docker.io 20.10; it must not start ' +
      'services of its own, hence the policy-rc.d): printf \'#!/bin/sh\\nexit 101\\n\' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ' +
      'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io  (then remove policy-rc.d if you created it)';
    console.log(`note: ${msg}`);
    notes.push(msg);
  } else {
    peers.push({
      name: 'dockerd',
      what: `${DOCKERD} + ${CONTAINERD} (their own, on temp roots)`,
      start: (dir) => startDockerdDaemon(DOCKERD, CONTAINERD, dir),
    });
  }
}

if (WANTED.has('skopeo')) {
  if (!SKOPEO) {
    const msg = 'skopeo not installed: skipped (apt-get install -y skopeo)';
    console.log(`note: ${msg}`);
    notes.push(msg);
  } else {
    peers.push({ name: 'skopeo', what: `${SKOPEO} copy docker://… oci:… (network + write of the blobs only, no extraction)`, direct: true, measure: (ref, runDir) => measureSkopeo(ref, runDir) });
  }
}

if (WANTED.has('tar')) {
  peers.push({
    name: 'tar',
    what: 'GNU tar -xz of each layer blob (fed from memory, all layers at once) + sync -f: no network, no hashing, no tar-split; the least an extractor writes',
    direct: true,
    measure: (ref, runDir, img) => measureTar(img, runDir),
  });
}

if (!DOCKER_CLI && peers.some((p) => !p.direct)) {
  console.error('no docker CLI found (looked for /usr/local/bin/docker, /usr/bin/docker; or pass --docker)');
  process.exit(2);
}
if (peers.length === 0) {
  console.error('no peer to measure');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// one measured pull
// ---------------------------------------------------------------------------
async function measureDaemonPull(peer, ref, img, runDir) {
  const d = await peer.start(runDir);
  try {
    await sleep(SETTLE_MS);
    const stored0 = duBytes(d.dataDirs);
    const alloc0 = duBytes(d.dataDirs, true);
    const dropped = dropCaches();
    const dirtyBefore = dirtyBytes();
    const c0 = counters(d.roots);
    const sampler = startSampling([...d.roots]);
    const t0 = process.hrtime.bigint();
    const r = await run(DOCKER_CLI, ['-H', `unix://${d.socket}`, 'pull', ref], { env: cliEnv });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const { peakRss, peakRssRoots, peakAnon, peakDirty } = sampler.stop();
    const c1 = counters(d.roots);
    if (r.code !== 0) throw new Error(`docker pull exited ${r.code}:\n${r.out.trim().split('\n').slice(-5).join('\n')}\n--- daemon log (tail) ---\n${d.log().slice(-2000)}`);
    const stored = duBytes(d.dataDirs) - stored0;
    const allocated = duBytes(d.dataDirs, true) - alloc0;
    const inspect = await run(DOCKER_CLI, ['-H', `unix://${d.socket}`, 'image', 'inspect', '--format', '{{.Id}} {{.Size}}', ref], { env: cliEnv });
    const [id, size] = inspect.out.trim().split(' ');
    return {
      wallS: wall,
      cpuS: c1.cpu - c0.cpu,
      peakRssBytes: peakRss,
      peakRssDaemonsOnlyBytes: peakRssRoots,
      peakRssAnonBytes: peakAnon,
      writtenBytes: c1.io.write - c0.io.write,
      cancelledBytes: c1.io.cancelled - c0.io.cancelled,
      readBytes: c1.io.read - c0.io.read,
      storedBytes: stored,
      allocatedBytes: allocated,
      peakDirtyBytes: peakDirty,
      dirtyBeforeBytes: dirtyBefore,
      cachesDropped: dropped,
      imageId: id,
      imageIdOk: id === img.configDigest,
      imageSize: Number(size),
    };
  } finally {
    await d.stop();
  }
}

async function measureSkopeo(ref, runDir) {
  const dest = path.join(runDir, 'oci');
  const stats = path.join(runDir, 'stats');
  const dropped = dropCaches();
  const dirtyBefore = dirtyBytes();
  // The shell reaps skopeo, so its own /proc stat and io then include skopeo's CPU and writes.
  const script = `"$0" copy --quiet --src-tls-verify=false "docker://$1" "oci:$2:bench"; rc=$?; cat /proc/$$/stat /proc/$$/io > "$3"; exit $rc`;
  const t0 = process.hrtime.bigint();
  const child = spawn('sh', ['-c', script, SKOPEO, ref, dest, stats], { stdio: ['ignore', 'pipe', 'pipe'] });
  const sampler = startSampling([child.pid]);
  let out = '';
  child.stdout.on('data', (x) => (out += x));
  child.stderr.on('data', (x) => (out += x));
  const code = await new Promise((r) => child.on('exit', (c, s) => r(c ?? s)));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const sampled = sampler.stop();
  if (code !== 0) throw new Error(`skopeo copy exited ${code}: ${out.trim()}`);
  return directResult({ wall, sampled, stats, dest, dropped, dirtyBefore });
}

/** The figures of a command run under one `sh` that wrote its own /proc stat and io to `stats` after reaping the rest. */
function directResult({ wall, sampled, stats, dest, dropped, dirtyBefore }) {
  const text = readFileSync(stats, 'utf8');
  rmSync(stats);
  const stat = text.slice(text.lastIndexOf(')') + 2).split('\n')[0].split(' ');
  const v = (k) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return {
    wallS: wall,
    cpuS: (Number(stat[11]) + Number(stat[12]) + Number(stat[13]) + Number(stat[14])) / CLK_TCK,
    peakRssBytes: sampled.peakRss,
    peakRssDaemonsOnlyBytes: sampled.peakRssRoots,
    peakRssAnonBytes: sampled.peakAnon,
    writtenBytes: v('write_bytes'),
    cancelledBytes: v('cancelled_write_bytes'),
    readBytes: v('read_bytes'),
    storedBytes: duBytes([dest]),
    allocatedBytes: duBytes([dest], true),
    peakDirtyBytes: sampled.peakDirty,
    dirtyBeforeBytes: dirtyBefore,
    cachesDropped: dropped,
  };
}

/**
 * The floor for bytes written: GNU tar extracting the same layers into plain
 * directories on the same filesystem, then one sync. Whatever an engine
 * writes above this is its own overhead; below it only a different disk
 * layout could go (each file costs whole 4 KiB pages, plus its inode).
 */
async function measureTar(img, runDir) {
  const dest = path.join(runDir, 'tar');
  const stats = path.join(runDir, 'stats');
  img.layers.forEach((_, i) => mkdirSync(path.join(dest, String(i)), { recursive: true }));
  const dropped = dropCaches();
  const dirtyBefore = dirtyBytes();
  // One shell starts a tar per layer on a fifo and reaps them all, so its own /proc stat and io include theirs.
  const fifos = img.layers.map((_, i) => path.join(runDir, `in${i}`));
  for (const f of fifos) spawnSync('mkfifo', [f]);
  const script =
    img.layers.map((_, i) => `tar -xzf "${fifos[i]}" -C "$1/${i}" & p${i}=$!`).join('\n') +
    `\nrc=0\n${img.layers.map((_, i) => `wait $p${i} || rc=1`).join('\n')}\nsync -f "$1"\ncat /proc/$$/stat /proc/$$/io > "$2"; exit $rc`;
  const t0 = process.hrtime.bigint();
  const child = spawn('sh', ['-c', script, 'sh', dest, stats], { stdio: ['ignore', 'pipe', 'pipe'] });
  const sampler = startSampling([child.pid]);
  let out = '';
  child.stdout.on('data', (x) => (out += x));
  child.stderr.on('data', (x) => (out += x));
  const exited = new Promise((r) => child.on('exit', (c, s) => r(c ?? s)));
  await Promise.all(
    img.layers.map(
      (l, i) =>
        new Promise((resolve, reject) => {
          const w = createWriteStream(fifos[i]);
          w.on('error', reject);
          w.end(l.gz, resolve);
        }),
    ),
  );
  const code = await exited;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const sampled = sampler.stop();
  if (code !== 0) throw new Error(`tar exited ${code}: ${out.trim()}`);
  return directResult({ wall, sampled, stats, dest, dropped, dirtyBefore });
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------
/** The commit the executable says it was built from (`--version` of the client mentions it when it can). */
function builtCommit() {
  const out = spawnSync(SEA_COPY, ['version'], { encoding: 'utf8' }).stdout ?? '';
  return /Git commit:\s+(\S+)/.exec(out)?.[1];
}

function stats(xs) {
  const s = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '-').length)));
  return rows
    .map((r, n) => r.map((c, i) => (i === 0 ? String(c ?? '-').padEnd(widths[i]) : String(c ?? '-').padStart(widths[i]))).join('  ') + (n === 0 ? '\n' + widths.map((w) => '-'.repeat(w)).join('  ') : ''))
    .join('\n');
}

async function main() {
  const t = Date.now();
  const img = await buildImage();
  const tarTotal = img.layers.reduce((n, l) => n + l.tarSize, 0);
  const gzTotal = img.layers.reduce((n, l) => n + l.size, 0);
  console.log(
    `image: ${img.layers.length} layers, ${round(tarTotal / MB)} MB tar, ${round(gzTotal / MB)} MB gzip ` +
      `(${img.layers.map((l) => `${l.files} files ${round(l.tarSize / MB)}→${round(l.size / MB)} MB`).join(', ')}); built in ${round((Date.now() - t) / 1000)} s`,
  );
  const registry = await startRegistry(TMP);
  await pushImage(registry.url, 'bench/img', 'v1', img);
  const ref = `${registry.host}/bench/img:v1`;
  console.log(`registry: ${REGISTRY_BIN} on ${registry.host}; pushed ${ref} (${img.manifestDigest.slice(0, 19)}…)`);
  if (SEA_COPY) console.log(`skiff: a copy of ${path.relative(ROOT, SEA) || SEA} (sha256 ${SEA_SHA256.slice(0, 12)}, built from ${builtCommit() ?? 'unknown commit'})`);
  console.log(`peers: ${peers.map((p) => p.name).join(', ')}; ${RUNS} runs each, taking turns; docker CLI ${DOCKER_CLI}\n`);

  const runs = Object.fromEntries(peers.map((p) => [p.name, []]));
  const failures = Object.fromEntries(peers.map((p) => [p.name, []]));
  // Run directories stay until the end when the disk has room. On an ext4
  // without a journal (this machine's root), the inode allocator skips
  // inodes freed in the last minute or more: a pull right after the previous
  // run's removal made its files several times slower (0.25 ms per create
  // instead of 0.02), for whichever peer came next. A device's journaled
  // ext4 does not do that.
  const perRun = 3 * tarTotal;
  const keepRuns = statfsSync(TMP).bavail * statfsSync(TMP).bsize > RUNS * peers.length * perRun + 2e9;
  if (!keepRuns) notes.push('not enough free disk to keep every run\'s files until the end: each run\'s directory was removed after it');
  for (let i = 0; i < RUNS && !aborted; i++) {
    for (let j = 0; j < peers.length && !aborted; j++) {
      const peer = peers[(i + j) % peers.length];
      const runDir = path.join(TMP, `${peer.name}-${i}`);
      mkdirSync(runDir, { recursive: true });
      try {
        const m = peer.direct ? await peer.measure(ref, runDir, img) : await measureDaemonPull(peer, ref, img, runDir);
        runs[peer.name].push(m);
        console.log(
          `run ${i + 1}/${RUNS} ${peer.name.padEnd(7)} wall ${m.wallS.toFixed(2)} s  cpu ${m.cpuS.toFixed(2)} s  peak RSS ${round(m.peakRssBytes / MB)} MB  ` +
            `written ${round(m.writtenBytes / MB)} MB / stored ${round(m.storedBytes / MB)} MB  peak dirty ${round(m.peakDirtyBytes / MiB)} MiB` +
            (m.imageIdOk === false ? `  IMAGE ID MISMATCH ${m.imageId}` : ''),
        );
      } catch (err) {
        if (aborted) break;
        failures[peer.name].push(String(err.message ?? err));
        console.log(`run ${i + 1}/${RUNS} ${peer.name}: FAILED: ${String(err.message ?? err).split('\n').slice(0, 8).join('\n  ')}`);
      } finally {
        unmountUnder(runDir);
        if (!keepRuns) rmSync(runDir, { recursive: true, force: true });
      }
    }
  }

  // summary
  const fields = {
    wallS: (m) => m.wallS,
    cpuS: (m) => m.cpuS,
    peakRssMB: (m) => m.peakRssBytes / MB,
    peakRssDaemonsOnlyMB: (m) => m.peakRssDaemonsOnlyBytes / MB,
    peakRssAnonMB: (m) => m.peakRssAnonBytes / MB,
    writtenMB: (m) => m.writtenBytes / MB,
    netWrittenMB: (m) => (m.writtenBytes - m.cancelledBytes) / MB,
    storedMB: (m) => m.storedBytes / MB,
    allocatedMB: (m) => m.allocatedBytes / MB,
    writtenPerStored: (m) => (m.storedBytes > 0 ? m.writtenBytes / m.storedBytes : NaN),
    writtenPerAllocated: (m) => (m.allocatedBytes > 0 ? m.writtenBytes / m.allocatedBytes : NaN),
    peakDirtyMiB: (m) => m.peakDirtyBytes / MiB,
    dirtyRiseMiB: (m) => (m.peakDirtyBytes - m.dirtyBeforeBytes) / MiB,
    dirtyBeforeMiB: (m) => m.dirtyBeforeBytes / MiB,
  };
  const summary = {};
  for (const p of peers) {
    summary[p.name] = {};
    for (const [k, f] of Object.entries(fields)) {
      const s = stats(runs[p.name].map(f));
      summary[p.name][k] = s && { median: round(s.median, 3), min: round(s.min, 3), max: round(s.max, 3), n: s.n };
    }
  }
  const med = (peer, k) => summary[peer]?.[k]?.median;
  const ratio = (k) => (med('skiff', k) !== undefined && med('dockerd', k) ? round(med('skiff', k) / med('dockerd', k), 2) : undefined);
  const ratios = {
    wall: ratio('wallS'),
    cpu: ratio('cpuS'),
    peakRss: ratio('peakRssMB'),
    peakRssAnon: ratio('peakRssAnonMB'),
    written: ratio('writtenMB'),
    stored: ratio('storedMB'),
    writtenPerStored: ratio('writtenPerStored'),
    writtenPerAllocated: ratio('writtenPerAllocated'),
    peakDirty: ratio('peakDirtyMiB'),
    // Against GNU tar on the same layers: how much of skiff's writing is its own overhead.
    writtenVsTarFloor: med('skiff', 'writtenMB') !== undefined && med('tar', 'writtenMB') ? round(med('skiff', 'writtenMB') / med('tar', 'writtenMB'), 3) : undefined,
  };

  const fmt = (s, d = 1) => (s ? (s.n > 1 ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : s.median.toFixed(d)) : '-');
  const fmtMed = (s, d = 1) => (s ? s.median.toFixed(d) : '-');
  const fmtRange = (s, d = 1) => (s && s.n > 1 ? `${s.min.toFixed(d)}–${s.max.toFixed(d)}` : '');
  console.log(`\nPull of ${ref}: ${round(tarTotal / MB)} MB tar / ${round(gzTotal / MB)} MB gzip; median of the successful runs, min–max below`);
  const rows = [['peer', 'runs', 'wall s', 'CPU s', 'peak RSS MB', '(anon)', 'written MB', 'stored MB', 'written/stored', '(/allocated)', 'peak dirty MiB']];
  for (const p of peers) {
    const s = summary[p.name];
    const cols = [[s.wallS, 2], [s.cpuS, 2], [s.peakRssMB, 1], [s.peakRssAnonMB, 1], [s.writtenMB, 1], [s.storedMB, 1], [s.writtenPerStored, 2], [s.writtenPerAllocated, 2], [s.peakDirtyMiB, 1]];
    rows.push([p.name, `${runs[p.name].length}/${RUNS}`, ...cols.map(([x, d]) => fmtMed(x, d))]);
    if (runs[p.name].length > 1) rows.push(['', '', ...cols.map(([x, d]) => fmtRange(x, d))]);
  }
  if (ratios.wall !== undefined) {
    const r2 = (x) => (x === undefined ? '-' : x.toFixed(2));
    rows.push(['skiff/dockerd', '', ...[ratios.wall, ratios.cpu, ratios.peakRss, ratios.peakRssAnon, ratios.written, ratios.stored, ratios.writtenPerStored, ratios.writtenPerAllocated, ratios.peakDirty].map(r2)]);
  }
  console.log(table(rows));
  console.log(
    'CPU, RSS and written count the daemon(s) and all their child processes (dockerd + containerd + children; skiff + children; skopeo itself; tar and gzip).\n' +
      'stored = du -sb growth of the data root(s) (apparent bytes); allocated = du -s growth (disk blocks): written bytes are counted per page, so\n' +
      'a small file costs at least 4 KiB of writes. Daemons-only peak RSS (no children): ' +
      peers.map((p) => `${p.name} ${fmt(summary[p.name].peakRssDaemonsOnlyMB)}`).join(', ') +
      ' MB.\nWritten minus cancelled_write_bytes (dirty data of files deleted before writeback, e.g. dockerd\'s downloaded blobs): ' +
      peers.map((p) => `${p.name} ${fmt(summary[p.name].netWrittenMB)}`).join(', ') +
      ' MB.\nDirty+Writeback is machine-wide; right before the pulls it was ' +
      peers.map((p) => `${p.name} ${fmt(summary[p.name].dirtyBeforeMiB)}`).join(', ') +
      ' MiB; peak minus that: ' +
      peers.map((p) => `${p.name} ${fmt(summary[p.name].dirtyRiseMiB)}`).join(', ') +
      ' MiB.',
  );

  if (ratios.writtenVsTarFloor !== undefined) {
    console.log(
      `The floor: GNU tar writes ${fmt(summary.tar.writtenPerStored, 3)} bytes per stored byte (${fmt(summary.tar.writtenPerAllocated, 3)} per allocated) for these layers; ` +
        `skiff writes ${ratios.writtenVsTarFloor}× what tar writes.`,
    );
  }
  const verdict = (v, limit) => (v === undefined ? 'n/a' : v <= limit ? 'PASS' : 'FAIL');
  const targets = [
    { target: `wall ≤ ${TARGETS.wallVsDockerd}× dockerd`, value: ratios.wall, limit: TARGETS.wallVsDockerd, result: verdict(ratios.wall, TARGETS.wallVsDockerd) },
    { target: `peak RSS during pull ≤ ${TARGETS.rssMB} MB`, value: med('skiff', 'peakRssMB'), limit: TARGETS.rssMB, result: verdict(med('skiff', 'peakRssMB'), TARGETS.rssMB) },
    {
      target: `written ≤ ${TARGETS.writtenPerStored}× stored on disk (du)`,
      value: med('skiff', 'writtenPerAllocated'),
      limit: TARGETS.writtenPerStored,
      result: verdict(med('skiff', 'writtenPerAllocated'), TARGETS.writtenPerStored),
    },
    {
      // Page-granular accounting: no extractor writes less than whole pages per file.
      target: `written ≤ ${TARGETS.writtenPerStored}× apparent bytes (du -b)`,
      value: med('skiff', 'writtenPerStored'),
      limit: TARGETS.writtenPerStored,
      result:
        verdict(med('skiff', 'writtenPerStored'), TARGETS.writtenPerStored) +
        (med('tar', 'writtenPerStored') > TARGETS.writtenPerStored ? ` (below the floor: GNU tar writes ${med('tar', 'writtenPerStored').toFixed(3)})` : ''),
    },
    { target: `peak Dirty+Writeback ≤ ${TARGETS.dirtyMiB} MiB`, value: med('skiff', 'peakDirtyMiB'), limit: TARGETS.dirtyMiB, result: verdict(med('skiff', 'peakDirtyMiB'), TARGETS.dirtyMiB) },
  ];
  if (WANTED.has('skiff')) {
    console.log('\nskiff against the targets of /work/shared/ref/platform-notes.md (medians)');
    console.log(table([['target', 'skiff', 'result'], ...targets.map((x) => [x.target, x.value === undefined ? '-' : x.value.toFixed(2), x.result])]));
  }
  for (const p of peers) {
    const bad = runs[p.name].filter((m) => m.imageIdOk === false);
    if (bad.length) notes.push(`${p.name}: ${bad.length} pull(s) gave image ID ${bad[0].imageId}, expected ${img.configDigest}`);
    const dirty = summary[p.name].dirtyBeforeMiB;
    if (dirty && dirty.max > 1) notes.push(`${p.name}: Dirty+Writeback was already up to ${dirty.max.toFixed(1)} MiB right before a pull: other writers on this machine inflate the dirty peaks`);
    if (runs[p.name].some((m) => !m.cachesDropped)) notes.push('could not write /proc/sys/vm/drop_caches: pulls ran with warm caches');
    for (const f of failures[p.name]) notes.push(`${p.name} failed: ${f.split('\n')[0]}`);
  }
  for (const n of notes) console.log(`note: ${n}`);

  const ver = (cmd, args) => (cmd ? spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.trim().split('\n')[0] : undefined);
  const results = {
    date: new Date().toISOString(),
    gitCommit: spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || undefined,
    host: { node: process.version, kernel: os.release(), arch: os.arch(), cpu: os.cpus()[0]?.model, cpus: os.cpus().length, memTotalMiB: Math.round(os.totalmem() / MiB) },
    versions: {
      skiff: SEA_COPY ? ver(SEA_COPY, ['--version']) : undefined,
      skiffBinary: SEA_COPY ? { path: SEA, bytes: statSync(SEA_COPY).size, sha256: SEA_SHA256, builtCommit: builtCommit() } : undefined,
      dockerd: ver(DOCKERD, ['--version']),
      containerd: ver(CONTAINERD, ['--version']),
      skopeo: ver(SKOPEO, ['--version']),
      dockerCli: ver(DOCKER_CLI, ['--version']),
    },
    settings: { runs: RUNS, rssSampleMs: RSS_EVERY_MS, dirtySampleMs: DIRTY_EVERY_MS, settleMs: SETTLE_MS, units: 'MB = 1e6 bytes, MiB = 2^20 bytes' },
    image: {
      ref,
      manifestDigest: img.manifestDigest,
      configDigest: img.configDigest,
      tarBytes: tarTotal,
      gzipBytes: gzTotal,
      layers: img.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, files: l.files, tarBytes: l.tarSize, gzipBytes: l.size })),
    },
    peers: Object.fromEntries(peers.map((p) => [p.name, { what: p.what, summary: summary[p.name], runs: runs[p.name], failures: failures[p.name] }])),
    ratiosSkiffVsDockerd: ratios,
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
  console.error(err?.stack ?? err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
