// Delta images end to end, with balenaEngine's delta cases rebuilt as
// fixtures (busybox from Debian's package plus deterministic data): the daemon
// creates each delta (POST /images/delta), docker push puts the delta image
// in a real registry, target and delta are removed, the delta is pulled, and the result
// must be the target: same image ID, same DiffIDs. Sizes have ceilings. Then
// the failure cases: missing base, corrupt and truncated deltas, wrong magic,
// kill -9 during a delta pull, and bases found only in --delta-data-root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { deltaLayerTar } from '../../src/delta/layer.js';
import { busyboxImage } from '../helpers/busybox.js';
import { docker, run, SKIFF, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { makeLayer, MT, pseudoRandom, sha256, startRegistry, type Layer, type LayerEntry, type PushedImage, type TestRegistry } from '../helpers/registry.js';

function api(d: TestDaemon, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: d.socket, method, path, headers: { host: 'docker' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Case {
  name: string;
  base: LayerEntry[][];
  target: LayerEntry[][];
  /** Ceiling for the summed size of the `delta` files (uncompressed, as balena's TestDeltaSize counts). */
  maxDelta: number;
}

const bb = busyboxImage();
const files = (prefix: string, n: number, size: (i: number) => number, seed: string): LayerEntry[] => [
  { name: `${prefix}/`, type: 'directory' },
  ...Array.from({ length: n }, (_, i) => ({ name: `${prefix}/f${i}`, data: pseudoRandom(size(i), `${seed}-${i}`) })),
];
const app = files('app', 40, (i) => 1000 + i * 150, 'app');
const appChanged = app.map((e) =>
  e.name === 'app/f7' ? { ...e, data: Buffer.concat([(e.data as Buffer).subarray(0, 500), pseudoRandom(1024, 'edit'), (e.data as Buffer).subarray(1524)]) } : e,
);
const many = files('many', 1500, (i) => (i * 37) % 2000, 'many');
const manyChanged = many.map((e, i) => (i % 100 === 5 ? { ...e, data: pseudoRandom(((i * 37) % 2000) + 10, `many-new-${i}`) } : e));

const CASES: Case[] = [
  { name: 'identical images', base: [bb, app], target: [bb, app], maxDelta: 0 },
  { name: 'same files in one layer', base: [bb, app], target: [[...bb, ...app]], maxDelta: 200 },
  { name: 'small change in an app layer', base: [bb, app], target: [bb, appChanged], maxDelta: 1024 + 200 },
  {
    name: '1 MB file changed in the base layer',
    base: [[...bb, { name: 'big.bin', data: pseudoRandom(1 << 20, 'big1') }], app],
    target: [[...bb, { name: 'big.bin', data: pseudoRandom(1 << 20, 'big2') }], app],
    maxDelta: (1 << 20) + 400,
  },
  {
    name: 'files added and removed',
    base: [bb, app],
    target: [bb, [...app.filter((e) => e.name !== 'app/f3' && e.name !== 'app/f20'), { name: 'app/new', data: pseudoRandom(10_000, 'added') }]],
    maxDelta: 10_000 + 600,
  },
  { name: 'a base with many small files', base: [bb, many], target: [bb, manyChanged], maxDelta: 15 * 1100 + 15 * 40 + 200 },
];

/** A delta image stored in the daemon, read back as blobs (push is another module's job). */
async function deltaImageBlobs(d: TestDaemon, id: string): Promise<{ config: Buffer; layers: Layer[]; deltaBytes: number; files: Buffer[] }> {
  const config = readFileSync(join(d.dataRoot, 'images', id.slice(7), 'config.json'));
  const diffIds = (JSON.parse(config.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
  const recs = new Map<string, { cacheId: string; parent: string | null; diffId: string }>();
  for (const n of readdirSync(join(d.dataRoot, 'layerdb'))) {
    if (!n.endsWith('.json') || n.startsWith('.')) continue;
    const r = JSON.parse(readFileSync(join(d.dataRoot, 'layerdb', n), 'utf8')) as { chainId: string; cacheId: string; parent: string | null; diffId: string };
    recs.set(r.chainId, r);
  }
  let parent: string | null = null;
  const layers: Layer[] = [];
  const deltaFiles: Buffer[] = [];
  let deltaBytes = 0;
  for (const diffId of diffIds) {
    const chain: string = parent ? sha256(`${parent} ${diffId}`) : diffId;
    const rec = recs.get(chain);
    assert.ok(rec, `delta layer ${chain} is stored`);
    const f = join(d.dataRoot, 'overlay2', rec.cacheId, 'diff', 'delta');
    let tar: Buffer;
    if (existsSync(f)) {
      const data = readFileSync(f);
      deltaFiles.push(data);
      deltaBytes += data.length;
      tar = await tarOfDelta(data);
    } else {
      assert.deepEqual(readdirSync(join(d.dataRoot, 'overlay2', rec.cacheId, 'diff')), [], 'a common layer is empty');
      tar = Buffer.alloc(1024);
    }
    assert.equal(sha256(tar), diffId, 'the delta layer tar rebuilds to its DiffID');
    const gz = gzipSync(tar);
    layers.push({ tar, gz, diffId, digest: sha256(gz), size: gz.length });
    parent = chain;
  }
  return { config, layers, deltaBytes, files: deltaFiles };
}

async function tarOfDelta(data: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of deltaLayerTar(data.length, (async function* () {
    yield data;
  })())) out.push(c);
  return Buffer.concat(out);
}

async function pushRaw(reg: TestRegistry, repo: string, tag: string, config: Buffer, layers: Layer[]): Promise<void> {
  for (const l of layers) await reg.pushBlob(repo, l.gz);
  const configDigest = await reg.pushBlob(repo, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.dockerManifest,
    config: { mediaType: MT.dockerConfig, size: config.length, digest: configDigest },
    layers: layers.map((l) => ({ mediaType: MT.dockerLayer, size: l.size, digest: l.digest })),
  });
  await reg.pushManifest(repo, tag, MT.dockerManifest, manifest);
}

async function createDelta(d: TestDaemon, src: string, dest: string, tag: string): Promise<{ id: string; lines: Array<{ status?: string; id?: string; error?: string }> }> {
  const r = await api(d, 'POST', `/images/delta?src=${encodeURIComponent(src)}&dest=${encodeURIComponent(dest)}&t=${encodeURIComponent(tag)}`);
  assert.equal(r.status, 200, r.body);
  const lines = r.body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l) as { status?: string; id?: string; error?: string });
  const err = lines.find((l) => l.error);
  assert.equal(err, undefined, JSON.stringify(err));
  const created = lines.map((l) => /^Created delta: (sha256:[0-9a-f]{64})$/.exec(l.status ?? '')).find(Boolean);
  assert.ok(created, r.body);
  return { id: created[1] as string, lines };
}

async function inspect(d: TestDaemon, name: string): Promise<{ Id: string; RootFS: { Layers: string[] } } | undefined> {
  const r = await docker(d.host, ['image', 'inspect', name]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as Array<{ Id: string; RootFS: { Layers: string[] } }>)[0];
}

async function checkClean(d: TestDaemon): Promise<void> {
  const c = await run(SKIFF, ['-H', d.host, 'check']);
  assert.equal(c.code, 0, c.stdout + c.stderr);
  assert.match(c.stdout, / 0 broken$/m);
  assert.deepEqual(readdirSync(join(d.dataRoot, 'layerdb', 'tmp')), []);
}

const EMPTY = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

describe('delta images', () => {
  /** Delta image blobs of each case, for the corruption tests. */
  const kept = new Map<string, { config: Buffer; layers: Layer[]; deltaIndex: number; deltaTar: Buffer }>();
  let reg: TestRegistry;
  let d: TestDaemon;
  const pushed = new Map<string, PushedImage>();

  async function pushFixture(repo: string, layers: LayerEntry[][]): Promise<PushedImage> {
    const img = await reg.pushImage(repo, 'latest', await Promise.all(layers.map((l) => makeLayer(l))), { os: 'linux', architecture: 'amd64' }, { config: { cmd: ['sh'] } });
    pushed.set(repo, img);
    return img;
  }

  before(async () => {
    reg = await startRegistry();
    d = await startDaemon({ config: { 'insecure-registries': [`127.0.0.1:${reg.port}`] } });
  });
  after(async () => {
    d?.cleanup();
    await reg?.stop();
  });

  CASES.forEach((c, n) => {
    test(`${c.name}: delta size ceiling, then a delta pull rebuilds the target`, async () => {
      const base = await pushFixture(`case${n}/base`, c.base);
      const target = await pushFixture(`case${n}/target`, c.target);
      for (const i of [base, target]) assert.equal((await docker(d.host, ['pull', `${reg.host}/${i.repo}`])).code, 0);
      const { id, lines } = await createDelta(d, `${reg.host}/${base.repo}`, `${reg.host}/${target.repo}`, `case${n}-delta:v1`);
      assert.ok(lines.some((l) => l.status === 'Fingerprinting'));
      assert.ok(lines.some((l) => /^Normal size: .*, Delta size: .*x improvement$/.test(l.status ?? '')));
      assert.ok(lines.some((l) => l.status === `Successfully tagged case${n}-delta:v1`));
      const ins = JSON.parse((await docker(d.host, ['image', 'inspect', 'case' + n + '-delta:v1'])).stdout) as Array<{ Id: string; Config: { Labels: Record<string, string> } }>;
      assert.equal(ins[0]?.Id, id);
      assert.equal(ins[0]?.Config.Labels['io.resin.delta.base'], base.imageId);
      assert.equal(ins[0]?.Config.Labels['io.resin.delta.config'], target.config.toString());

      const blobs = await deltaImageBlobs(d, id);
      const deltaIndex = blobs.layers.findIndex((l) => l.diffId !== EMPTY);
      if (deltaIndex >= 0) kept.set(`case${n}`, { config: blobs.config, layers: blobs.layers, deltaIndex, deltaTar: (blobs.layers[deltaIndex] as Layer).tar });
      console.log(`# ${c.name}: delta files ${blobs.deltaBytes} bytes (ceiling ${c.maxDelta}), shipped ${blobs.layers.reduce((s, l) => s + l.size, 0)} bytes gzip'd`);
      assert.ok(blobs.deltaBytes <= c.maxDelta, `${c.name}: ${blobs.deltaBytes} > ${c.maxDelta}`);

      // rdiff (Debian's librsync) applies skiff's delta to the concatenated base tars.
      const dir = tempDir('skiff-delta-rdiff-');
      writeFileSync(join(dir, 'base.tar'), Buffer.concat(base.layers.map((l) => l.tar)));
      let k = 0;
      for (const [i, l] of target.layers.entries()) {
        if (i < base.layers.length && base.layers.slice(0, i + 1).every((b, j) => b.diffId === target.layers[j]?.diffId)) continue;
        writeFileSync(join(dir, 'delta'), blobs.files[k++] as Buffer);
        const p = spawnSync('rdiff', ['patch', '-f', join(dir, 'base.tar'), join(dir, 'delta'), join(dir, 'out')], { encoding: 'utf8' });
        assert.equal(p.status, 0, p.stderr);
        assert.equal(sha256(readFileSync(join(dir, 'out'))), l.diffId, `rdiff patch rebuilds target layer ${i}`);
      }

      // docker push of the delta image (skiff's push recompresses its layers like the blobs above).
      assert.equal((await docker(d.host, ['tag', `case${n}-delta:v1`, `${reg.host}/case${n}/delta:v1`])).code, 0);
      const push = await docker(d.host, ['push', `${reg.host}/case${n}/delta:v1`], 60_000);
      assert.equal(push.code, 0, push.stdout + push.stderr);
      for (const name of [`case${n}-delta:v1`, `${reg.host}/case${n}/delta:v1`, `${reg.host}/${target.repo}`]) assert.equal((await docker(d.host, ['rmi', name])).code, 0);
      // Identical images: the target is the base, which stays.
      if (target.imageId !== base.imageId) assert.equal(await inspect(d, target.imageId), undefined, 'target is gone');
      const p = await docker(d.host, ['pull', `${reg.host}/case${n}/delta:v1`], 60_000);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      const got = await inspect(d, `${reg.host}/case${n}/delta:v1`);
      assert.equal(got?.Id, target.imageId);
      assert.deepEqual(got?.RootFS.Layers, target.layers.map((l) => l.diffId));
      await checkClean(d);
    });
  });

  test('the target already present: nothing is downloaded', async () => {
    const img = pushed.get('case2/target') as PushedImage;
    assert.ok(await inspect(d, img.imageId));
    assert.equal((await docker(d.host, ['tag', img.imageId, 'keep:case2'])).code, 0);
    assert.equal((await docker(d.host, ['rmi', `${reg.host}/case2/delta:v1`])).code, 0);
    const p = await docker(d.host, ['pull', `${reg.host}/case2/delta:v1`]);
    assert.equal(p.code, 0, p.stderr);
    // No layer is even listed: the delta's layers are never opened.
    assert.doesNotMatch(p.stdout, /Pulling fs layer|Already exists|Downloading|Pull complete/, p.stdout);
    assert.equal((await inspect(d, `${reg.host}/case2/delta:v1`))?.Id, img.imageId);
  });

  test('rmi of base and target while their delta is being created: both untagged and deleted, their layers kept until the delta is made', async () => {
    // Big enough that the delta takes far longer than two removals (balena's TestDeltaCreateDestinationLock).
    const big = pseudoRandom(24 << 20, 'lock');
    const edited = Buffer.concat([big.subarray(0, 10 << 20), pseudoRandom(4096, 'lock-edit'), big.subarray((10 << 20) + 4096)]);
    const base = await pushFixture('lock/base', [[{ name: 'data.bin', data: big }]]);
    const target = await pushFixture('lock/target', [[{ name: 'data.bin', data: edited }], [{ name: 'x', data: Buffer.from('x') }]]);
    for (const i of [base, target]) assert.equal((await docker(d.host, ['pull', `${reg.host}/${i.repo}`])).code, 0);
    const chainIds = (diffIds: string[]) => diffIds.map((_, i) => diffIds.slice(1, i + 1).reduce((c, id) => sha256(`${c} ${id}`), diffIds[0] as string));
    const held = [...chainIds(base.layers.map((l) => l.diffId)), ...chainIds(target.layers.map((l) => l.diffId))];
    const layerRecords = () => new Set(readdirSync(join(d.dataRoot, 'layerdb')).filter((n) => n.endsWith('.json')).map((n) => `sha256:${n.slice(0, -5)}`));
    assert.ok(held.every((c) => layerRecords().has(c)));

    const removals: Array<{ status: number; body: string }> = [];
    let removedAt = 0;
    const lines: Array<{ status?: string; error?: string }> = [];
    await new Promise<void>((resolve, reject) => {
      const path = `/images/delta?src=${encodeURIComponent(`${reg.host}/lock/base`)}&dest=${encodeURIComponent(`${reg.host}/lock/target`)}&t=lock-delta:v1`;
      const req = httpRequest({ socketPath: d.socket, method: 'POST', path, headers: { host: 'docker' } }, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
            const line = JSON.parse(buf.slice(0, i)) as { status?: string; error?: string };
            buf = buf.slice(i + 2);
            lines.push(line);
            if (line.status === 'Fingerprinting' && removals.length === 0) {
              void (async () => {
                for (const n of [`${reg.host}/lock/target`, `${reg.host}/lock/base`]) removals.push(await api(d, 'DELETE', `/images/${encodeURIComponent(n)}`));
                removedAt = lines.length;
              })().catch(reject);
            }
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(lines.find((l) => l.error), undefined, JSON.stringify(lines));
    assert.ok(removedAt > 0 && removedAt < lines.length, `both removals answered while the delta was made (after line ${removedAt} of ${lines.length})`);
    for (const [i, img] of [target, base].entries()) {
      const r = removals[i] as { status: number; body: string };
      assert.equal(r.status, 200, r.body);
      const items = JSON.parse(r.body) as Array<{ Untagged?: string; Deleted?: string }>;
      assert.deepEqual(items.filter((x) => x.Deleted).map((x) => x.Deleted), [img.imageId], 'the image, none of its layers');
    }
    const created = lines.map((l) => /^Created delta: (sha256:[0-9a-f]{64})$/.exec(l.status ?? '')).find(Boolean);
    assert.ok(created, JSON.stringify(lines));
    const ins = await inspect(d, 'lock-delta:v1');
    assert.equal(ins?.Id, created[1]);
    const blobs = await deltaImageBlobs(d, created[1] as string);
    assert.ok(blobs.deltaBytes > 4096 && blobs.deltaBytes < 64 * 1024, `delta files ${blobs.deltaBytes} bytes`);
    // The delta made, the layers nobody uses any more are gone.
    const left = layerRecords();
    assert.deepEqual(held.filter((c) => left.has(c)), []);
    assert.equal(await inspect(d, `${reg.host}/lock/base`), undefined);
    assert.equal((await docker(d.host, ['rmi', 'lock-delta:v1'])).code, 0);
    await checkClean(d);
  });

  test('POST /images/delta errors, and `skiff image delta` on the CLI', async () => {
    const base = pushed.get('case4/base') as PushedImage;
    const noSrc = await api(d, 'POST', '/images/delta?dest=x');
    assert.equal(noSrc.status, 400, noSrc.body);
    const missing = await api(d, 'POST', `/images/delta?src=nope:1&dest=${encodeURIComponent(base.imageId)}`);
    assert.equal(missing.status, 404, missing.body);
    assert.match(missing.body, /No such image: nope:1/);
    const cli = await run(SKIFF, ['-H', d.host, 'image', 'delta', base.imageId, `${reg.host}/${base.repo}`, '-t', 'cli-delta:1']);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /^Created delta: sha256:[0-9a-f]{64}$/m);
    assert.match(cli.stdout, /^Successfully tagged cli-delta:1$/m);
    const bad = await run(SKIFF, ['-H', d.host, 'image', 'frobnicate', 'a', 'b']);
    assert.equal(bad.code, 2, bad.stderr);
  });

  test('missing base, corrupt, truncated and wrong-magic deltas are clear errors and change nothing', async () => {
    const fresh = await startDaemon({ config: { 'insecure-registries': [`127.0.0.1:${reg.port}`] } });
    try {
      const base = pushed.get('case2/base') as PushedImage;
      const p = await docker(fresh.host, ['pull', `${reg.host}/case2/delta:v1`]);
      assert.notEqual(p.code, 0);
      assert.match(p.stderr, new RegExp(`loading delta base image "${base.imageId}": `));
      assert.equal((await docker(fresh.host, ['images', '-q'])).stdout.trim(), '');
      await checkClean(fresh);

      assert.equal((await docker(fresh.host, ['pull', `${reg.host}/case2/base`])).code, 0);
      const good = kept.get('case2');
      assert.ok(good, 'case 2 ran first');
      const delta = readDelta(good.deltaTar);
      const bad: Array<[string, Buffer, RegExp]> = [
        ['magic', Buffer.concat([Buffer.from([0xba, 0xaa, 0xaa, 0xad]), delta.subarray(4)]), /Got magic number baaaaaad rather than expected value 72730236/],
        ['truncated', delta.subarray(0, delta.length - 40), /unexpected EOF/],
        ['corrupt', Buffer.concat([delta.subarray(0, 4), Buffer.from([0x60]), delta.subarray(5)]), /applying delta: invalid delta command 0x60/],
      ];
      const layersBefore = readdirSync(join(fresh.dataRoot, 'overlay2')).sort();
      for (const [what, data, re] of bad) {
        const tar = await tarOfDelta(data);
        const gz = gzipSync(tar);
        const layers = good.layers.map((l, i) => (i === good.deltaIndex ? { tar, gz, diffId: sha256(tar), digest: sha256(gz), size: gz.length } : l));
        const cfg = JSON.parse(good.config.toString()) as { rootfs: { diff_ids: string[] } };
        cfg.rootfs.diff_ids = layers.map((l) => l.diffId);
        await pushRaw(reg, 'bad/delta', what, Buffer.from(JSON.stringify(cfg)), layers);
        const r = await docker(fresh.host, ['pull', `${reg.host}/bad/delta:${what}`]);
        assert.notEqual(r.code, 0, what);
        assert.match(r.stderr, re, what);
        assert.deepEqual(readdirSync(join(fresh.dataRoot, 'overlay2')).sort(), layersBefore, `${what}: no layer left behind`);
        await checkClean(fresh);
      }
      // Not even a whole tar header.
      const empty = (await tarOfDelta(delta)).subarray(0, 300);
      const gz = gzipSync(empty);
      const layers = good.layers.map((l, i) => (i === good.deltaIndex ? { tar: empty, gz, diffId: sha256(empty), digest: sha256(gz), size: gz.length } : l));
      const cfg = JSON.parse(good.config.toString()) as { rootfs: { diff_ids: string[] } };
      cfg.rootfs.diff_ids = layers.map((l) => l.diffId);
      await pushRaw(reg, 'bad/delta', 'notar', Buffer.from(JSON.stringify(cfg)), layers);
      const r = await docker(fresh.host, ['pull', `${reg.host}/bad/delta:notar`]);
      assert.match(r.stderr, /applying delta: .*unexpected EOF/);
      assert.deepEqual(readdirSync(join(fresh.dataRoot, 'overlay2')).sort(), layersBefore, 'no layer left behind');
      await checkClean(fresh);
    } finally {
      fresh.cleanup();
    }
  });

  test('a base whose files changed on disk: the delta pull fails clearly and leaves nothing behind', async () => {
    const fresh = await startDaemon({ config: { 'insecure-registries': [`127.0.0.1:${reg.port}`] } });
    try {
      assert.equal((await docker(fresh.host, ['pull', `${reg.host}/case2/base`])).code, 0);
      // app/f10 is the same in the target: the delta copies it from the base. Same size, other bytes.
      const hits = readdirSync(join(fresh.dataRoot, 'overlay2'))
        .map((c) => join(fresh.dataRoot, 'overlay2', c, 'diff', 'app', 'f10'))
        .filter((f) => existsSync(f));
      assert.equal(hits.length, 1);
      const f = hits[0] as string;
      const data = readFileSync(f);
      data[100] = (data[100] as number) ^ 0xff;
      writeFileSync(f, data);
      const layersBefore = readdirSync(join(fresh.dataRoot, 'overlay2')).sort();
      const r = await docker(fresh.host, ['pull', `${reg.host}/case2/delta:v1`]);
      assert.notEqual(r.code, 0, r.stdout);
      // The patched layer is checked against the target's DiffID.
      const want = (pushed.get('case2/target') as PushedImage).layers[1]?.diffId as string;
      assert.match(r.stderr, new RegExp(`layer content does not match its DiffID: expected ${want}, got sha256:[0-9a-f]{64}`));
      assert.deepEqual(readdirSync(join(fresh.dataRoot, 'overlay2')).sort(), layersBefore, 'no layer left behind');
      assert.equal(await inspect(fresh, (pushed.get('case2/target') as PushedImage).imageId), undefined);
    } finally {
      fresh.cleanup();
    }
  });

  test('kill -9 during a delta pull, then restart: consistent store, and the pull completes', async () => {
    const dir = tempDir('skiff-delta-crash-');
    const cfg = { 'insecure-registries': [`127.0.0.1:${reg.port}`] };
    let dd = await startDaemon({ dir, config: cfg });
    try {
      assert.equal((await docker(dd.host, ['pull', `${reg.host}/case5/base`])).code, 0);
      for (const delay of [30, 120, 400]) {
        const pull = docker(dd.host, ['pull', `${reg.host}/case5/delta:v1`], 60_000);
        await new Promise((r) => setTimeout(r, delay));
        dd.child.kill('SIGKILL');
        await dd.exited;
        await pull;
        dd = await startDaemon({ dir, config: cfg });
        await checkClean(dd);
        const img = await inspect(dd, (pushed.get('case5/target') as PushedImage).imageId);
        if (img) assert.deepEqual(img.RootFS.Layers, (pushed.get('case5/target') as PushedImage).layers.map((l) => l.diffId));
      }
      const p = await docker(dd.host, ['pull', `${reg.host}/case5/delta:v1`], 60_000);
      assert.equal(p.code, 0, p.stderr);
      assert.equal((await inspect(dd, `${reg.host}/case5/delta:v1`))?.Id, (pushed.get('case5/target') as PushedImage).imageId);
      await checkClean(dd);
    } finally {
      dd.cleanup();
    }
  });

  test('a base found only in --delta-data-root', async () => {
    const other = await startDaemon({ config: { 'insecure-registries': [`127.0.0.1:${reg.port}`] } });
    assert.equal((await docker(other.host, ['pull', `${reg.host}/case2/base`])).code, 0);
    await other.stop();
    const without = await startDaemon({ config: { 'insecure-registries': [`127.0.0.1:${reg.port}`] } });
    try {
      const r = await docker(without.host, ['pull', `${reg.host}/case2/delta:v1`]);
      assert.match(r.stderr, /loading delta base image/);
    } finally {
      without.cleanup();
    }
    const withStore = await startDaemon({ config: { 'insecure-registries': [`127.0.0.1:${reg.port}`], 'delta-data-root': other.dataRoot } });
    try {
      const r = await docker(withStore.host, ['pull', `${reg.host}/case2/delta:v1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await inspect(withStore, `${reg.host}/case2/delta:v1`))?.Id, (pushed.get('case2/target') as PushedImage).imageId);
      await checkClean(withStore);
    } finally {
      withStore.cleanup();
      other.cleanup();
    }
  });

});

/** The `delta` file inside a tar{delta}. */
function readDelta(tar: Buffer): Buffer {
  const size = parseInt(tar.subarray(124, 136).toString('ascii').replace(/\0.*$/, '').trim(), 8);
  return tar.subarray(512, 512 + size);
}
