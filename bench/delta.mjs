#!/usr/bin/env node
// Delta size, time and memory: skiff's delta images against balenaEngine's
// (librsync, `rdiff -b 512`, gzip'd tar{delta}), xdelta3 -9 and zstd
// --patch-from, on the same pairs. skiff is measured through its daemon: the
// delta is created by POST /images/delta (base read through the tar-split
// index), and applied by pulling the delta image from a loopback registry.
// Run as root:
//
//   node bench/delta.mjs [--bin dist/skiff-linux-x64] [--pairs all|app|cases]
//
// Prints a table and writes bench/results/delta.json. Sizes are bytes as
// shipped: skiff and balena gzip(tar{delta}) per changed layer (Go's default
// level 6, what a push does); xdelta3 and zstd output as is (compressed).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { makeLayer, manifestOf, procs, pushImage, readOr, round, sha256, startRegistry, startSkiffDaemon, stopProc, unmountUnder } from './lib.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    bin: { type: 'string', default: path.join(ROOT, 'dist', 'skiff-linux-x64') },
    pairs: { type: 'string', default: 'all' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results', 'delta.json') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log('usage: node bench/delta.mjs [--bin path/to/skiff-linux-x64] [--pairs all|app|cases] [--out file.json]');
  process.exit(0);
}
const SEA = path.resolve(opts.bin);
const LATER = new Date(1_700_500_000_000);

// ---- fixtures -------------------------------------------------------------

/** A deterministic pseudo-random buffer (xorshift; fast enough for MBs). */
function noise(n, seed) {
  const b = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function busybox() {
  const bin = readFileSync('/bin/busybox');
  return [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', data: bin, mode: 0o755 },
    ...['sh', 'ls', 'cat', 'echo', 'sleep', 'true'].map((a) => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
  ];
}

/** ~`target` bytes of real files (Python's and Perl's libraries: text and binaries), as an app layer. */
function appFiles(target) {
  const roots = ['/usr/lib/python3.11', '/usr/lib/python3', '/usr/share/perl'];
  const out = [{ name: 'app/', type: 'directory' }];
  const dirs = new Set();
  let total = 0;
  const walk = (dir) => {
    let names = [];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (total >= target) return;
      const p = path.join(dir, n);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size < 8e6) {
        const rel = 'app' + p;
        const parent = path.posix.dirname(rel);
        const parts = parent.split('/');
        for (let i = 2; i <= parts.length; i++) {
          const d = parts.slice(0, i).join('/') + '/';
          if (!dirs.has(d)) {
            dirs.add(d);
            out.push({ name: d, type: 'directory' });
          }
        }
        out.push({ name: rel, data: readFileSync(p) });
        total += st.size + 512;
      }
    }
  };
  for (const r of roots) walk(r);
  return out;
}

/** ~3 % of the files edited as an update would: a line inserted and a word changed in text, a few bytes in binaries. */
function editApp(files, touchAll) {
  let k = 0;
  return files.map((e) => {
    if (!e.data) return touchAll ? { ...e, mtime: LATER } : e;
    if (k++ % 33 !== 7) return touchAll ? { ...e, mtime: LATER } : e;
    const d = Buffer.from(e.data);
    const text = !d.subarray(0, 1024).includes(0);
    let data;
    if (text) {
      const mid = d.indexOf(10, d.length >> 1);
      const at = mid < 0 ? d.length : mid + 1;
      data = Buffer.concat([d.subarray(0, at), Buffer.from(`    # updated in release ${k}: handle the new case\n`), d.subarray(at)]);
      const w = data.indexOf('return', at + 60);
      if (w > 0) data.write('RETURN', w);
    } else {
      data = d;
      for (const f of [0.2, 0.5, 0.8]) noise(16, k + f * 100).copy(data, Math.floor(d.length * f));
    }
    return { ...e, data, mtime: LATER };
  });
}

function randFiles(prefix, n, size, seed) {
  return [{ name: `${prefix}/`, type: 'directory' }, ...Array.from({ length: n }, (_, i) => ({ name: `${prefix}/f${i}`, data: noise(size(i), seed * 100_000 + i) }))];
}

function pairs(which) {
  const out = [];
  if (which === 'all' || which === 'cases') {
    const bb = busybox();
    const app = randFiles('app', 40, (i) => 1000 + i * 150, 1);
    const appChanged = app.map((e) => (e.name === 'app/f7' ? { ...e, data: Buffer.concat([e.data.subarray(0, 500), noise(1024, 99), e.data.subarray(1524)]) } : e));
    const many = randFiles('many', 1500, (i) => (i * 37) % 2000, 2);
    const manyChanged = many.map((e, i) => (i % 100 === 5 ? { ...e, data: noise(((i * 37) % 2000) + 10, 3000 + i) } : e));
    out.push(
      { name: 'identical images', base: [bb, app], target: [bb, app] },
      { name: 'same files in one layer', base: [bb, app], target: [[...bb, ...app]] },
      { name: 'small change in an app layer', base: [bb, app], target: [bb, appChanged] },
      { name: '1 MB file changed in the base layer', base: [[...bb, { name: 'big.bin', data: noise(1 << 20, 7) }], app], target: [[...bb, { name: 'big.bin', data: noise(1 << 20, 8) }], app] },
      { name: 'files added and removed', base: [bb, app], target: [bb, [...app.filter((e) => e.name !== 'app/f3' && e.name !== 'app/f20'), { name: 'app/new', data: noise(10_000, 9) }]] },
      { name: 'a base with many small files', base: [bb, many], target: [bb, manyChanged] },
    );
  }
  if (which === 'all' || which === 'app') {
    const bb = busybox();
    const app = appFiles(60e6);
    out.push(
      { name: '60 MB app layer, 3 % of files edited', base: [bb, app], target: [bb, editApp(app, false)] },
      { name: '60 MB app layer, 3 % edited, fresh checkout (all mtimes new)', base: [bb, app], target: [bb, editApp(app, true)] },
    );
  }
  return out;
}

// ---- skiff through its daemon ------------------------------------------------

function api(socket, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: socket, method, path: p, headers: { Host: 'docker', ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function streamError(body) {
  for (const l of body.split('\n')) {
    if (!l.trim()) continue;
    const m = JSON.parse(l);
    if (m.error) return m.error;
  }
  return undefined;
}

class Daemon {
  constructor(dir, registryHost) {
    this.dir = dir;
    this.root = path.join(dir, 'root');
    this.registryHost = registryHost;
  }
  async start() {
    const d = await startSkiffDaemon(SEA, this.dir, this.root, { 'insecure-registries': [this.registryHost] });
    this.socket = d.socket;
    this.pid = d.roots[0];
    this.stop = d.stop;
    this.log = d.log;
  }
  /** Peak and current RSS of the daemon (kB → bytes). */
  memory() {
    const s = readOr(`/proc/${this.pid}/status`);
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  }
  async pull(ref) {
    const r = await api(this.socket, 'POST', `/images/create?fromImage=${encodeURIComponent(ref)}`);
    const err = r.status === 200 ? streamError(r.body) : r.body;
    if (err) throw new Error(`pull ${ref}: ${err}`);
  }
  async inspect(name) {
    const r = await api(this.socket, 'GET', `/images/${encodeURIComponent(name)}/json`);
    return r.status === 200 ? JSON.parse(r.body) : undefined;
  }
  async rmi(name) {
    const r = await api(this.socket, 'DELETE', `/images/${encodeURIComponent(name)}`);
    if (r.status !== 200) throw new Error(`rmi ${name}: ${r.body}`);
  }
}

/** The delta image's blobs, read back from the data root (push is measured elsewhere). */
function deltaBlobs(root, id) {
  const config = readFileSync(path.join(root, 'images', id.slice(7), 'config.json'));
  const diffIds = JSON.parse(config).rootfs.diff_ids;
  const recs = new Map();
  for (const n of readdirSync(path.join(root, 'layerdb'))) {
    if (!n.endsWith('.json') || n.startsWith('.')) continue;
    const r = JSON.parse(readFileSync(path.join(root, 'layerdb', n), 'utf8'));
    recs.set(r.chainId, r);
  }
  let parent = null;
  const layers = [];
  for (const diffId of diffIds) {
    const chain = parent ? sha256(`${parent} ${diffId}`) : diffId;
    const rec = recs.get(chain);
    const f = path.join(root, 'overlay2', rec.cacheId, 'diff', 'delta');
    const delta = existsSync(f) ? readFileSync(f) : undefined;
    const tar = delta ? tarOf(delta) : Buffer.alloc(1024);
    if (sha256(tar) !== diffId) throw new Error(`delta layer ${diffId} does not rebuild`);
    const gz = gzipSync(tar, { level: 6 });
    layers.push({ tar, gz, diffId, digest: sha256(gz), size: gz.length, delta });
    parent = chain;
  }
  return { config, layers };
}

/** tar{delta} as skiff (and balena) write it: one ustar entry, mode 0600, mtime 0. */
function tarOf(data) {
  const h = Buffer.alloc(512);
  const oct = (at, w, n) => h.write(n.toString(8).padStart(w - 1, '0') + '\0', at, w, 'ascii');
  h.write('delta', 0);
  oct(100, 8, 0o600);
  oct(108, 8, 0);
  oct(116, 8, 0);
  oct(124, 12, data.length);
  oct(136, 12, 0);
  h.write('0', 156);
  h.write('ustar\0' + '00', 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512 + 1024)]);
}

function pushDelta(url, repo, tag, blobs) {
  return pushImage(url, repo, tag, { layers: blobs.layers, config: blobs.config, manifest: manifestOf(blobs.config, blobs.layers) });
}

function imageOf(layers) {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'] },
      created: '2023-11-14T22:13:20Z',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  return { layers, config, manifest: manifestOf(config, layers), id: sha256(config) };
}

// ---- the other tools ---------------------------------------------------------

/** Runs a command under /usr/bin/time: wall seconds and peak RSS (bytes). */
function timed(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  const kb = Number(r.stderr.trim().split('\n').pop());
  return { secs, rss: kb * 1024 };
}

function others(dir, baseTar, targetTar) {
  const b = path.join(dir, 'base.tar');
  const t = path.join(dir, 'target.tar');
  writeFileSync(b, baseTar);
  writeFileSync(t, targetTar);
  const out = {};
  // balenaEngine: librsync, 512-byte blocks, 32-byte BLAKE2 strong sums; the delta shipped as gzip(tar{delta}).
  const sig = timed('rdiff', ['signature', '-f', '-b', '512', '-S', '32', '-H', 'blake2', b, path.join(dir, 'sig')]);
  const del = timed('rdiff', ['delta', '-f', path.join(dir, 'sig'), t, path.join(dir, 'rdiff.delta')]);
  const rd = readFileSync(path.join(dir, 'rdiff.delta'));
  const ap = timed('rdiff', ['patch', '-f', b, path.join(dir, 'rdiff.delta'), path.join(dir, 'out')]);
  if (sha256(readFileSync(path.join(dir, 'out'))) !== sha256(targetTar)) throw new Error('rdiff patch did not rebuild the target');
  out.rdiff = { raw: rd.length, shipped: gzipSync(tarOf(rd), { level: 6 }).length, createSecs: sig.secs + del.secs, createRss: Math.max(sig.rss, del.rss), applySecs: ap.secs, applyRss: ap.rss };
  const xc = timed('xdelta3', ['-9', '-f', '-e', '-s', b, t, path.join(dir, 'x.vcdiff')]);
  const xa = timed('xdelta3', ['-f', '-d', '-s', b, path.join(dir, 'x.vcdiff'), path.join(dir, 'out')]);
  out.xdelta3 = { shipped: statSync(path.join(dir, 'x.vcdiff')).size, createSecs: xc.secs, createRss: xc.rss, applySecs: xa.secs, applyRss: xa.rss };
  const zc = timed('zstd', ['-q', '-f', '-19', '--long=27', `--patch-from=${b}`, t, '-o', path.join(dir, 'z.zst')]);
  const za = timed('zstd', ['-q', '-f', '-d', '--long=27', `--patch-from=${b}`, path.join(dir, 'z.zst'), '-o', path.join(dir, 'out')]);
  out.zstd = { shipped: statSync(path.join(dir, 'z.zst')).size, createSecs: zc.secs, createRss: zc.rss, applySecs: za.secs, applyRss: za.rss };
  return out;
}

// ---- main --------------------------------------------------------------------

async function main() {
  if (!existsSync(SEA)) throw new Error(`${SEA} is missing: node build.mjs --arch x64`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-delta-'));
  const results = [];
  try {
    const reg = await startRegistry(tmp);
    const d = new Daemon(path.join(tmp, 'd'), reg.host);
    await d.start();
    const idle = d.memory().rss;
    let n = 0;
    for (const pair of pairs(opts.pairs)) {
      n++;
      const base = imageOf(await Promise.all(pair.base.map(makeLayer)));
      const target = imageOf(await Promise.all(pair.target.map(makeLayer)));
      await pushImage(reg.url, `p${n}/base`, 'v1', base);
      await pushImage(reg.url, `p${n}/target`, 'v1', target);
      await d.pull(`${reg.host}/p${n}/base:v1`);
      await d.pull(`${reg.host}/p${n}/target:v1`);
      // A fresh daemon per measurement: VmHWM is then the operation's peak.
      await d.stop();
      await d.start();
      const memBefore = d.memory().rss;
      const t0 = process.hrtime.bigint();
      const r = await api(d.socket, 'POST', `/images/delta?src=${encodeURIComponent(`${reg.host}/p${n}/base:v1`)}&dest=${encodeURIComponent(`${reg.host}/p${n}/target:v1`)}&t=p${n}-delta:v1`);
      const createSecs = Number(process.hrtime.bigint() - t0) / 1e9;
      const err = streamError(r.body);
      if (err) throw new Error(`delta ${pair.name}: ${err}`);
      const id = /Created delta: (sha256:[0-9a-f]{64})/.exec(r.body)?.[1];
      const createPeak = d.memory().hwm;
      const blobs = deltaBlobs(d.root, id);
      const changed = blobs.layers.filter((l) => l.delta);
      const skiff = {
        raw: changed.reduce((s, l) => s + l.delta.length, 0),
        shipped: changed.reduce((s, l) => s + l.size, 0),
        createSecs,
        createRss: createPeak,
        createRssOverIdle: createPeak - memBefore,
      };
      // The daemon logs what the base fingerprint held: the hash index and the tar-split segments.
      const logged = [...d.log().matchAll(/delta created.*?base-bytes=(\d+) index-bytes=(\d+) segment-bytes=(\d+)/g)].pop();
      if (logged) Object.assign(skiff, { baseBytes: Number(logged[1]), indexBytes: Number(logged[2]), segmentBytes: Number(logged[3]) });
      await pushDelta(reg.url, `p${n}/delta`, 'v1', blobs);
      await d.rmi(`p${n}-delta:v1`);
      await d.rmi(`${reg.host}/p${n}/target:v1`);
      await d.stop();
      await d.start();
      const applyBefore = d.memory().rss;
      const t1 = process.hrtime.bigint();
      await d.pull(`${reg.host}/p${n}/delta:v1`);
      skiff.applySecs = Number(process.hrtime.bigint() - t1) / 1e9;
      skiff.applyRss = d.memory().hwm;
      skiff.applyRssOverIdle = skiff.applyRss - applyBefore;
      const got = await d.inspect(`${reg.host}/p${n}/delta:v1`);
      if (got?.Id !== target.id) throw new Error(`${pair.name}: the delta pull gave ${got?.Id}, not the target ${target.id}`);
      // For scale: the same daemon pulling the target's layers the ordinary way.
      if (target.id !== base.id) {
        await d.rmi(`${reg.host}/p${n}/delta:v1`);
        await d.stop();
        await d.start();
        const plainBefore = d.memory().rss;
        const t2 = process.hrtime.bigint();
        await d.pull(`${reg.host}/p${n}/target:v1`);
        skiff.plainPullSecs = Number(process.hrtime.bigint() - t2) / 1e9;
        skiff.plainPullRssOverIdle = d.memory().hwm - plainBefore;
      }

      // The other tools diff the same bytes: base stream = all base layer tars; target = the changed layers.
      const baseTar = Buffer.concat(base.layers.map((l) => l.tar));
      const common = (i) => i < base.layers.length && base.layers.slice(0, i + 1).every((b, j) => b.diffId === target.layers[j].diffId);
      const changedTargets = target.layers.filter((_, i) => !common(i));
      const row = {
        pair: pair.name,
        baseBytes: baseTar.length,
        targetChangedBytes: changedTargets.reduce((s, l) => s + l.tar.length, 0),
        targetChangedGz: changedTargets.reduce((s, l) => s + l.size, 0),
        skiff,
      };
      if (changedTargets.length > 0) {
        const dir = path.join(tmp, `tools${n}`);
        mkdirSync(dir);
        // One target layer per pair changes in every fixture here; more would be summed.
        const o = others(dir, baseTar, Buffer.concat(changedTargets.map((l) => l.tar)));
        Object.assign(row, o);
        rmSync(dir, { recursive: true, force: true });
      }
      results.push(row);
      print(row);
      for (const ref of ['delta', 'target', 'base']) await d.rmi(`${reg.host}/p${n}/${ref}:v1`).catch(() => undefined);
    }
    await d.stop();
    await stopProc(reg.proc.child);
    const doc = { when: new Date().toISOString(), host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release() }, daemonIdleRss: idle, results };
    mkdirSync(path.dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, JSON.stringify(doc, null, 2) + '\n');
    table(results);
  } finally {
    for (const p of procs) await stopProc(p, 3000);
    unmountUnder(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
}

const kB = (n) => (n === undefined ? '-' : n < 10_000 ? `${n} B` : `${round(n / 1000, 1)} kB`);
const MiB = (n) => (n === undefined ? '-' : `${round(n / 1048576, 1)}`);
const s = (x) => (x === undefined ? '-' : round(x, 2));

function print(r) {
  console.log(`# ${r.pair}: skiff ${kB(r.skiff.shipped)} vs balena ${kB(r.rdiff?.shipped)} (${r.rdiff ? round(r.skiff.shipped / r.rdiff.shipped, 3) : '-'}x)`);
}

function table(rows) {
  const lines = [
    '| pair | base tar | changed target (tar / gz) | skiff shipped | balena rdiff -b 512 + gzip | skiff / balena | xdelta3 -9 | zstd -19 --patch-from | skiff index + segments (% of base) | skiff create s / daemon peak RSS MiB (over idle) | rdiff create s / RSS MiB | skiff apply (delta pull) s / daemon peak RSS MiB (over idle) | plain pull of the target s / (RSS over idle) | rdiff patch s / RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.pair} | ${kB(r.baseBytes)} | ${kB(r.targetChangedBytes)} / ${kB(r.targetChangedGz)} | ${kB(r.skiff.shipped)} | ${kB(r.rdiff?.shipped)} | ${r.rdiff ? round(r.skiff.shipped / r.rdiff.shipped, 3) : '-'} | ${kB(r.xdelta3?.shipped)} | ${kB(r.zstd?.shipped)} | ${r.skiff.indexBytes === undefined ? '-' : `${kB(r.skiff.indexBytes)} + ${kB(r.skiff.segmentBytes)} (${round((100 * (r.skiff.indexBytes + r.skiff.segmentBytes)) / r.skiff.baseBytes, 1)} %)`} | ${s(r.skiff.createSecs)} / ${MiB(r.skiff.createRss)} (${MiB(r.skiff.createRssOverIdle)}) | ${s(r.rdiff?.createSecs)} / ${MiB(r.rdiff?.createRss)} | ${s(r.skiff.applySecs)} / ${MiB(r.skiff.applyRss)} (${MiB(r.skiff.applyRssOverIdle)}) | ${s(r.skiff.plainPullSecs)} / (${MiB(r.skiff.plainPullRssOverIdle)}) | ${s(r.rdiff?.applySecs)} / ${MiB(r.rdiff?.applyRss)} |`,
    );
  }
  console.log(lines.join('\n'));
  writeFileSync(opts.out.replace(/\.json$/, '.md'), lines.join('\n') + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
