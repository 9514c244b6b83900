// Crash safety and full disks, end to end: the built daemon pulling from a
// real registry (through the fault proxy) is SIGKILLed at seeded random
// points and restarted on the same data root, which must then hold either
// the whole image or none of it, and nothing half-written; and a pull into
// a tiny tmpfs must fail cleanly (ENOSPC during extraction, or the early
// "not enough space" refusal before anything is downloaded).
//
//   SKIFF_CRASH_SEED=1234   replay a run (the seed is printed)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, parseResponse, rawRequest, run, SKIFF, startDaemon, tempDir, type RunResult, type TestDaemon } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faultproxy.js';
import { makeLayer, pseudoRandom, startRegistry, type Layer, type LayerEntry, type PushedImage, type TestRegistry } from '../helpers/registry.js';

/** mulberry32: small, seedable, good enough to pick kill points. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...walk(p));
  }
  return out;
}

interface LayerRecordJson {
  chainId: string;
  diffId: string;
  parent: string | null;
  cacheId: string;
}

function records(dataRoot: string): LayerRecordJson[] {
  const db = join(dataRoot, 'layerdb');
  if (!existsSync(db)) return [];
  return readdirSync(db)
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .map((n) => JSON.parse(readFileSync(join(db, n), 'utf8')) as LayerRecordJson);
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/**
 * What a store that recovered must look like: overlay2 holds exactly one
 * directory per committed layer record (plus `l`), every record's directory
 * exists, no intents in layerdb/tmp, no temp file from an interrupted
 * durable write anywhere. Returns the records.
 */
function assertTidy(dataRoot: string, what: string): LayerRecordJson[] {
  const recs = records(dataRoot);
  const dirs = listDir(join(dataRoot, 'overlay2')).filter((n) => n !== 'l');
  const cacheIds = recs.map((r) => r.cacheId).sort();
  assert.deepEqual(dirs, cacheIds, `${what}: overlay2 directories must be exactly the committed layers' (records: ${JSON.stringify(recs.map((r) => r.chainId))})`);
  for (const r of recs) assert.ok(existsSync(join(dataRoot, 'overlay2', r.cacheId, 'diff')), `${what}: layer ${r.chainId} has no diff directory`);
  assert.deepEqual(listDir(join(dataRoot, 'layerdb', 'tmp')), [], `${what}: layerdb/tmp must be empty`);
  const temps = walk(dataRoot).filter((p) => /\/\.[^/]+\.tmp-[^/]*$/.test(p));
  assert.deepEqual(temps, [], `${what}: temp files left behind`);
  return recs;
}

async function skiffCheck(host: string, layers: number, what: string): Promise<void> {
  const check = await run(SKIFF, ['-H', host, 'check']);
  assert.equal(check.code, 0, `${what}: skiff check: ${check.stdout}${check.stderr}`);
  assert.match(check.stdout, new RegExp(`^${layers} layers checked, 0 broken$`, 'm'), `${what}: ${check.stdout}`);
}

async function imageIds(host: string): Promise<string[]> {
  const r = await docker(host, ['images', '-q', '--no-trunc']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

/**
 * `docker pull`, once more when the fault proxy itself answered 502 (its
 * keep-alive connection to the registry went bad when the killed daemon
 * hung up mid-blob): that is the test's proxy, not the daemon under test.
 */
async function pullRetrying502(host: string, name: string, proxy: FaultProxy): Promise<RunResult> {
  for (let attempt = 0; ; attempt++) {
    const from = proxy.log.length;
    const r = await docker(host, ['pull', name], 60_000);
    const bad = proxy.log.slice(from).filter((e) => e.status === 502);
    if (r.code === 0 || attempt === 2 || bad.length === 0) return r;
    console.log(`# the proxy answered 502 (${bad.map((e) => `${e.method} ${e.url}`).join(', ')}); pulling again`);
  }
}

describe('crash safety: SIGKILL at random points of a pull', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let img: PushedImage;
  let layers: Layer[];
  let dir: string;
  let d: TestDaemon | undefined;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    const base = await makeLayer([
      { name: 'base/', type: 'directory' },
      { name: 'base/blob.bin', data: pseudoRandom(4_000_000, 'crash-base') },
      { name: 'base/etc.conf', data: 'x=1\n' },
    ]);
    // Many small files: extraction of this layer takes a while (open, write,
    // chown, chmod, utimes per file), so kills land inside it.
    const many: LayerEntry[] = [{ name: 'many/', type: 'directory' }];
    for (let dd = 0; dd < 16; dd++) {
      many.push({ name: `many/d${dd}/`, type: 'directory' });
      for (let f = 0; f < 40; f++) many.push({ name: `many/d${dd}/f${f}`, data: pseudoRandom(1024, `crash-${dd}-${f}`) });
    }
    many.push({ name: 'many/big.bin', data: pseudoRandom(2_000_000, 'crash-many') });
    const top = await makeLayer([
      { name: 'app/', type: 'directory' },
      { name: 'app/data.bin', data: pseudoRandom(4_000_000, 'crash-top') },
      { name: 'app/run', type: 'symlink', linkname: '/base/blob.bin' },
      { name: 'app/data.lnk', type: 'link', linkname: 'app/data.bin' },
    ]);
    layers = [base, await makeLayer(many), top];
    img = await reg.pushImage('crash/app', 'v1', layers);
    dir = tempDir('skiff-crash-');
  });
  after(async () => {
    d?.cleanup();
    await proxy?.stop();
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the image is all there or not at all, and the store is tidy after every kill', { timeout: 120_000 }, async () => {
    const t0 = Date.now();
    const seed = process.env.SKIFF_CRASH_SEED ? Number(process.env.SKIFF_CRASH_SEED) : Date.now() % 1_000_000_007;
    console.log(`# crash test seed: ${seed} (replay with SKIFF_CRASH_SEED=${seed})`);
    const rnd = prng(seed);
    const name = `${proxy.host}/crash/app:v1`;
    const chainCount = layers.length;

    d = await startDaemon({ dir });
    // Calibration: how long a pull from scratch takes here, to spread the kills over it.
    const t = Date.now();
    const first = await docker(d.host, ['pull', name], 60_000);
    const full = Date.now() - t;
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal((await docker(d.host, ['rmi', name])).code, 0);
    assertTidy(d.dataRoot, 'after calibration rmi');
    assert.deepEqual(records(d.dataRoot), []);
    const span = Math.min(Math.max(Math.round(full * 1.25), 400), 3000);
    console.log(`# a pull from scratch takes ${full} ms; kills spread over 0-${span} ms`);

    const N = 12;
    // Pulls from scratch (iteration 0 and after every rmi) get stratified kill
    // points: one in each slice of [0, 1), in shuffled order, mapped by x^1.5
    // so that the first slice lands within the first few dozen ms (before
    // any layer is started) and the last ones around the commit of the image.
    const K = Math.ceil((N + 1) / 2);
    const slots = Array.from({ length: K }, (_, i) => i);
    for (let i = slots.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [slots[i], slots[j]] = [slots[j] as number, slots[i] as number];
    }
    const phases: string[] = [];
    let fromScratch = true;
    for (let i = 0; i < N || (phases.filter((p) => p.startsWith('mid-extraction')).length < 2 && i < N + 6); i++) {
      const slot = fromScratch ? slots.shift() : undefined;
      const x = slot !== undefined ? (slot + rnd()) / K : fromScratch ? 0.2 + 0.6 * rnd() : rnd();
      const delay = Math.round(Math.pow(x, fromScratch ? 1.5 : 1) * span);
      const what: string = `iteration ${i} (kill at ${delay} ms, ${fromScratch ? 'from scratch' : 'image present'})`;
      const recsBefore = records(d.dataRoot).length;

      const pull = docker(d.host, ['pull', name], 60_000);
      // A pull that ended before the kill point leaves an idle daemon: kill it then (same state, less waiting).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([pull, new Promise((r) => (timer = setTimeout(r, delay)))]);
      clearTimeout(timer);
      await d.stop('SIGKILL');
      const pulled: RunResult = await pull;

      // Where did the kill land? Look at the data root as the crash left it.
      const intents = listDir(join(d.dataRoot, 'layerdb', 'tmp'));
      const recsAfter = records(d.dataRoot).length;
      const imagesOnDisk = listDir(join(d.dataRoot, 'images'));
      let phase: string;
      if (!fromScratch) phase = 'image already present';
      else if (intents.length > 0) phase = `mid-extraction (${intents.length} layer(s) being written, ${recsAfter} committed)`;
      else if (imagesOnDisk.length > 0) phase = pulled.code === 0 ? 'after the pull' : 'while storing the image';
      else if (recsAfter > recsBefore) phase = `between layers (${recsAfter} committed)`;
      else phase = 'before extraction';
      phases.push(phase);

      d = await startDaemon({ dir });
      const ids = await imageIds(d.host);
      const recs = assertTidy(d.dataRoot, what);
      if (ids.length > 0) {
        assert.deepEqual(ids, [img.imageId], `${what}: only the pulled image can be there`);
        const ins = await docker(d.host, ['image', 'inspect', img.imageId]);
        assert.equal(ins.code, 0, `${what}: ${ins.stderr}`);
        assert.deepEqual(JSON.parse(ins.stdout)[0].RootFS.Layers, layers.map((l) => l.diffId), what);
        // The tag goes in after the image: if it is there, it names this image.
        const byName = await docker(d.host, ['image', 'inspect', '--format', '{{.Id}}', name]);
        if (byName.code === 0) assert.equal(byName.stdout.trim(), img.imageId, what);
        assert.equal(recs.length, chainCount, `${what}: an image present must have all its layers`);
        await skiffCheck(d.host, chainCount, what);
      } else {
        assert.deepEqual(listDir(join(d.dataRoot, 'images')), [], `${what}: no image directory may survive without its image`);
        assert.equal((await docker(d.host, ['image', 'inspect', name])).code, 1, what);
        // Layers committed before the kill may stay (the next pull reuses them), but must be whole.
        assert.ok(recs.length <= chainCount, what);
        await skiffCheck(d.host, recs.length, what);
      }
      console.log(`# ${what}: ${phase}; after restart: ${ids.length ? 'image present' : `no image, ${recs.length} committed layer(s) kept`}`);

      const again = await pullRetrying502(d.host, name, proxy);
      assert.equal(again.code, 0, `${what}: pull after restart: ${again.stdout}${again.stderr}`);
      await skiffCheck(d.host, chainCount, `${what}, pulled again`);
      assert.equal(assertTidy(d.dataRoot, `${what}, pulled again`).length, chainCount);
      assert.deepEqual(await imageIds(d.host), [img.imageId]);

      fromScratch = i % 2 === 0;
      if (fromScratch) {
        const rmi = await docker(d.host, ['rmi', name]);
        assert.equal(rmi.code, 0, rmi.stderr);
        assert.deepEqual(assertTidy(d.dataRoot, `${what}, removed`), []);
      }
    }
    await d.stop();
    d = undefined;
    const mid = phases.filter((p) => p.startsWith('mid-extraction')).length;
    console.log(`# ${phases.length} kills in ${Date.now() - t0} ms: ${mid} mid-extraction, ${phases.filter((p) => p === 'before extraction').length} before extraction, ${phases.filter((p) => p.startsWith('between') || p.startsWith('while')).length} between layers/storing, ${phases.filter((p) => p.startsWith('after') || p.startsWith('image already')).length} after/no-op`);
    assert.ok(mid >= 2, `at least two kills must land mid-extraction (seed ${seed}): ${JSON.stringify(phases)}`);
  });
});

describe('a full disk: pulls into a tiny tmpfs', { skip: process.getuid?.() !== 0 ? 'needs root to mount a tmpfs' : false }, () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let mnt: string;
  let mounted = false;
  let d: TestDaemon | undefined;
  let zeros: PushedImage;
  let big: PushedImage;
  let small: PushedImage;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    mnt = tempDir('skiff-enospc-');
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { encoding: 'utf8' });
    assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
    mounted = true;
    const ok = await makeLayer([{ name: 'etc/', type: 'directory' }, { name: 'etc/hello', data: 'hello\n' }]);
    // 20 MB of zeros: a ~20 KB blob that cannot be unpacked into 8 MiB.
    const zero = await makeLayer([{ name: 'zeros/', type: 'directory' }, { name: 'zeros/a.bin', data: Buffer.alloc(20_000_000) }]);
    assert.ok(zero.size < 200_000, `the zeros layer compresses: ${zero.size}`);
    zeros = await reg.pushImage('enospc/zeros', 'v1', [ok, zero]);
    // Incompressible and bigger than the whole tmpfs: refused before any layer is downloaded.
    big = await reg.pushImage('enospc/big', 'v1', [await makeLayer([{ name: 'big.bin', data: pseudoRandom(10_000_000, 'enospc-big') }])]);
    small = await reg.pushImage('enospc/small', 'v1', [ok, await makeLayer([{ name: 'small.bin', data: pseudoRandom(1_000_000, 'enospc-small') }])]);
    mkdirSync(join(mnt, 'd'));
    d = await startDaemon({ dir: join(mnt, 'd') });
  });
  after(async () => {
    d?.cleanup();
    d = undefined;
    await proxy?.stop();
    await reg?.stop();
    if (mounted) {
      const u = spawnSync('umount', [mnt], { encoding: 'utf8' });
      if (u.status !== 0) spawnSync('umount', ['-l', mnt]);
    }
    if (mnt) rmSync(mnt, { recursive: true, force: true });
  });

  const free = (): number => {
    const s = statfsSync(mnt);
    return s.bavail * s.bsize;
  };

  test('ENOSPC while extracting fails the pull clearly, leaves nothing partial, and the daemon keeps serving', { timeout: 60_000 }, async () => {
    const daemon = d as TestDaemon;
    const freeBefore = free();
    const r = await docker(daemon.host, ['pull', `${proxy.host}/enospc/zeros:v1`], 60_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const out = r.stdout + r.stderr;
    assert.match(out, /no space left on device/i, out);
    assert.match(out, /ENOSPC|no space left on device while extracting layer/, out);
    assert.match(out, new RegExp(zeros.layers[1]?.digest as string), `the error names the layer: ${out}`);
    assert.equal(daemon.child.exitCode, null, `the daemon died:\n${daemon.logs()}`);
    const v = await docker(daemon.host, ['version', '--format', '{{.Server.Version}}']);
    assert.equal(v.code, 0, v.stderr);
    assert.deepEqual(await imageIds(daemon.host), []);
    assert.deepEqual(listDir(join(daemon.dataRoot, 'images')), []);
    const recs = assertTidy(daemon.dataRoot, 'after ENOSPC');
    // Only the small first layer can have been committed.
    assert.ok(recs.every((rec) => rec.diffId === zeros.layers[0]?.diffId), JSON.stringify(recs));
    await skiffCheck(daemon.host, recs.length, 'after ENOSPC');
    // The partial layer's space came back.
    assert.ok(free() > freeBefore - 1_000_000, `free space ${free()} of ${freeBefore} before`);

    // Still a working daemon: a pull that fits succeeds, also after a restart.
    const ok = await docker(daemon.host, ['pull', `${proxy.host}/enospc/small:v1`], 60_000);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.deepEqual(await imageIds(daemon.host), [small.imageId]);
    await skiffCheck(daemon.host, 2, 'small image');
    assert.equal(assertTidy(daemon.dataRoot, 'small image').length, 2);
    assert.equal(await daemon.stop(), 0);
    d = await startDaemon({ dir: join(mnt, 'd') });
    assert.deepEqual(await imageIds(d.host), [small.imageId]);
    assertTidy(d.dataRoot, 'after restart');
    const rmi = await docker(d.host, ['rmi', `${proxy.host}/enospc/small:v1`]);
    assert.equal(rmi.code, 0, rmi.stderr);
    assert.deepEqual(assertTidy(d.dataRoot, 'removed'), []);
  });

  test('ENOSPC while writing the tar-split record (not the files) fails the pull the same way', { timeout: 60_000 }, async () => {
    const daemon = d as TestDaemon;
    // Zeros fill the disk to ~300 KB of free space; then thousands of empty
    // files (no data blocks on tmpfs) with random names, whose headers make
    // the layer's tar-split.gz outgrow what is left.
    const entries: LayerEntry[] = [{ name: 'fill.bin', data: Buffer.alloc(Math.max(0, free() - 300_000)) }];
    const names = pseudoRandom(45 * 12_000, 'enospc-names').toString('hex');
    for (let i = 0; i < 12_000; i++) entries.push({ name: `n/${names.slice(i * 90, i * 90 + 90)}` });
    const layer = await makeLayer(entries);
    assert.ok(layer.size < free(), `the blob (${layer.size}) passes the early check (${free()} free)`);
    await reg.pushImage('enospc/split', 'v1', [layer]);
    const freeBefore = free();
    const r = await docker(daemon.host, ['pull', `${proxy.host}/enospc/split:v1`], 60_000);
    const out = r.stdout + r.stderr;
    assert.equal(daemon.child.exitCode, null, `the daemon died: ${out}\n${daemon.logs()}`);
    assert.equal(r.code, 1, out);
    assert.match(out, new RegExp(`no space left on device while extracting layer ${layer.digest}`), out);
    assert.equal((await docker(daemon.host, ['version', '--format', '{{.Server.Version}}'])).code, 0);
    assert.deepEqual(await imageIds(daemon.host), []);
    assert.deepEqual(assertTidy(daemon.dataRoot, 'after tar-split ENOSPC'), []);
    assert.ok(free() > freeBefore - 100_000, `free space ${free()} of ${freeBefore} before`);
  });

  test('an image bigger than the free space is refused before any layer is downloaded', { timeout: 60_000 }, async () => {
    const daemon = d as TestDaemon;
    const layer = big.layers[0] as Layer;
    assert.ok(layer.size > free(), `${layer.size} bytes must not fit in ${free()}`);
    const from = proxy.log.length;
    const r = await docker(daemon.host, ['pull', `${proxy.host}/enospc/big:v1`], 60_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /Error response from daemon: not enough space on .* to pull .*enospc\/big:v1: needs at least \d+ bytes, \d+ available/, r.stderr);
    assert.doesNotMatch(r.stdout, /Pulling fs layer|Downloading/, r.stdout);
    const blobGets = proxy.log.slice(from).filter((e) => e.method === 'GET' && e.url.includes('/blobs/'));
    // The config must be read to know the layers; no layer blob is touched.
    assert.deepEqual(blobGets.map((e) => e.url), [`/v2/enospc/big/blobs/${big.configDigest}`]);

    // The API answers with an error status, not a 200 stream.
    const q = new URLSearchParams({ fromImage: `${proxy.host}/enospc/big`, tag: 'v1' });
    const raw = await rawRequest(daemon.socket, `POST /v1.41/images/create?${q} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 30_000);
    const res = parseResponse(raw);
    assert.equal(res.status, 500, raw);
    assert.match(JSON.parse(res.body).message, /^not enough space on /);
    assert.ok(!proxy.log.slice(from).some((e) => e.url.includes(layer.digest)), 'no layer blob request');
    assert.deepEqual(await imageIds(daemon.host), []);
    assertTidy(daemon.dataRoot, 'after refusal');
    const v = await docker(daemon.host, ['version', '--format', '{{.Server.Version}}']);
    assert.equal(v.code, 0, v.stderr);
  });
});
