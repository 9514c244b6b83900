// docker push, save and load against the built daemon, driven by the real
// docker CLI: a real registry (Debian's docker-registry on 127.0.0.1, one
// with htpasswd auth), a fault proxy that cuts an upload mid-body, archives
// made by skiff itself and an OCI layout built here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import Docker from 'dockerode';
import { after, before, describe, test } from 'node:test';
import { assertCheckClean, assertOnlyCommittedLayers, run, runSync, SKIFF, startDaemon, type RunResult, type TestDaemon } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faultproxy.js';
import { startTokenServer } from '../helpers/tokenserver.js';
import { makeConfig, makeLayer, MT, pseudoRandom, sha256, startRegistry, type Layer, type PushedImage, type TestRegistry } from '../helpers/registry.js';

describe('push, save and load', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let d: TestDaemon;
  let d2: TestDaemon;
  let work: string;
  let dockerConfig: string;
  let base: Layer;
  let app: Layer;
  let img: PushedImage;
  /** The OCI archive's own layers: no registry has them. */
  let ociLayers: Layer[];

  const dk = (daemon: TestDaemon, args: string[], opts: { input?: string | Buffer; timeout?: number } = {}): Promise<RunResult> =>
    run('docker', ['-H', daemon.host, ...args], { env: { ...process.env, DOCKER_CONFIG: dockerConfig }, input: opts.input, timeout: opts.timeout ?? 90_000 });
  const inspect = async (daemon: TestDaemon, name: string): Promise<{ Id: string; RepoTags: string[]; RootFS: { Layers: string[] } }> => {
    const r = await dk(daemon, ['image', 'inspect', name]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout)[0];
  };
  const imageIds = async (daemon: TestDaemon): Promise<string> => (await dk(daemon, ['images', '-q', '--no-trunc'])).stdout.split('\n').sort().join('\n');

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'skiff-transport-'));
    dockerConfig = join(work, 'docker-config');
    mkdirSync(dockerConfig);
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    base = await makeLayer([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/tool', data: pseudoRandom(300_000, 'tool'), mode: 0o755 },
      { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/old.conf', data: 'old' },
    ]);
    app = await makeLayer([
      { name: 'etc/.wh.old.conf' },
      { name: 'app/', type: 'directory' },
      { name: 'app/data.bin', data: pseudoRandom(1_500_000, 'app') },
      { name: 'app/run', type: 'symlink', linkname: '/bin/tool' },
    ]);
    img = await reg.pushImage('src/app', 'v1', [base, app]);
    ociLayers = [
      await makeLayer([{ name: 'oci/', type: 'directory' }, { name: 'oci/one', data: pseudoRandom(200_000, 'oci-one') }]),
      await makeLayer([{ name: 'oci/two', data: pseudoRandom(100_000, 'oci-two') }, { name: 'oci/.wh.one' }]),
    ];
    d = await startDaemon({ args: ['--max-download-attempts', '4'] });
    d2 = await startDaemon();
    const p = await dk(d, ['pull', `${reg.host}/src/app:v1`]);
    assert.equal(p.code, 0, p.stderr);
  });
  after(async () => {
    d?.cleanup();
    d2?.cleanup();
    await proxy?.stop();
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** An API request whose JSON-lines or raw answer is read as it comes; `onData` sees each piece and the response. */
  function apiStream(daemon: TestDaemon, method: string, path: string, headers: Record<string, string>, onData: (chunk: Buffer, res: IncomingMessage) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ socketPath: daemon.socket, method, path, headers: { host: 'docker', ...headers } }, (res) => {
        res.on('data', (c: Buffer) => onData(c, res));
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }
  async function apiCall(daemon: TestDaemon, method: string, path: string): Promise<{ status: number; body: string }> {
    let body = '';
    const status = await apiStream(daemon, method, path, {}, (c) => (body += c.toString()));
    return { status, body };
  }
  const layerRecorded = (daemon: TestDaemon, chainId: string) => readdirSync(join(daemon.dataRoot, 'layerdb')).includes(`${chainId.slice(7)}.json`);

  describe('save and load', () => {
    test('docker save writes Docker 20.10\'s layout with layer tars identical to the DiffIDs', async () => {
      const file = join(work, 'app.tar');
      const s = await dk(d, ['save', '-o', file, `${reg.host}/src/app:v1`]);
      assert.equal(s.code, 0, s.stderr);
      const list = runSync('tar', ['-tf', file]).stdout.trim().split('\n');
      const top = img.configDigest.slice(7);
      assert.ok(list.includes('manifest.json'), list.join('\n'));
      assert.ok(list.includes('repositories'));
      assert.ok(list.includes(`${top}.json`));
      const layerTars = list.filter((n) => n.endsWith('/layer.tar'));
      assert.equal(layerTars.length, 2);
      for (const l of layerTars) {
        const dir = l.slice(0, -'/layer.tar'.length);
        assert.match(dir, /^[0-9a-f]{64}$/);
        assert.ok(list.includes(`${dir}/`) && list.includes(`${dir}/VERSION`) && list.includes(`${dir}/json`), `${dir} has VERSION and json`);
      }
      const x = join(work, 'x');
      mkdirSync(x);
      assert.equal(runSync('tar', ['-xf', file, '-C', x]).code, 0);
      const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
      assert.deepEqual(manifest[0].RepoTags, [`${reg.host}/src/app:v1`]);
      assert.equal(manifest[0].Config, `${top}.json`);
      assert.deepEqual(readFileSync(join(x, manifest[0].Config)), img.config);
      assert.deepEqual(manifest[0].Layers.map((p: string) => sha256(readFileSync(join(x, p)))), [base.diffId, app.diffId]);
      const repos = JSON.parse(readFileSync(join(x, 'repositories'), 'utf8'));
      assert.equal(repos[`${reg.host}/src/app`].v1, manifest[0].Layers[1].split('/')[0]);
      assert.equal(readFileSync(join(x, manifest[0].Layers[0].split('/')[0], 'VERSION'), 'utf8'), '1.0');
      rmSync(x, { recursive: true, force: true });

      const piped = runSync('sh', ['-c', `docker -H ${d.host} save ${reg.host}/src/app:v1 | tar -t`]);
      assert.deepEqual(piped.stdout.trim().split('\n'), list, 'docker save | tar -t lists the same layout');
    });

    test('save, rmi, load round trip keeps the image ID, DiffIDs and tags; skiff check stays clean', async () => {
      const name = `${reg.host}/src/app:v1`;
      const file = join(work, 'round.tar');
      assert.equal((await dk(d, ['save', '-o', file, name])).code, 0);
      const before = await inspect(d, name);
      const rmi = await dk(d, ['rmi', name]);
      assert.equal(rmi.code, 0, rmi.stderr);
      assert.equal((await dk(d, ['image', 'inspect', name])).code, 1);
      const l = await dk(d, ['load', '-i', file]);
      assert.equal(l.code, 0, l.stderr + l.stdout);
      assert.match(l.stdout, new RegExp(`Loaded image: ${name.replace(/[.]/g, '\\.')}`));
      const after = await inspect(d, name);
      assert.equal(after.Id, before.Id);
      assert.equal(after.Id, img.imageId);
      assert.deepEqual(after.RootFS.Layers, [base.diffId, app.diffId]);
      assertOnlyCommittedLayers(d);
      await assertCheckClean(d);

      // Into an empty daemon from stdin, and run nothing: just compare.
      const viaStdin = await dk(d2, ['load'], { input: readFileSync(file) });
      assert.equal(viaStdin.code, 0, viaStdin.stderr);
      assert.equal((await inspect(d2, name)).Id, img.imageId);
      await assertCheckClean(d2);
    });

    test('a gzip-compressed archive loads; several images share layers in one archive', async () => {
      const extra = await makeLayer([{ name: 'extra', data: 'x' }]);
      // Another creation time: dockerd's legacy IDs of the shared base layer differ, its tar is written once.
      const two = await reg.pushImage('src/two', 'v1', [base, extra], undefined, { config: { created: '2024-01-01T00:00:00Z' } });
      assert.equal((await dk(d, ['pull', `${reg.host}/src/two:v1`])).code, 0);
      const file = join(work, 'both.tar');
      assert.equal((await dk(d, ['save', '-o', file, `${reg.host}/src/app:v1`, `${reg.host}/src/two:v1`])).code, 0);
      const list = runSync('tar', ['-tf', file]).stdout.trim().split('\n');
      const manifest = JSON.parse(runSync('tar', ['-xOf', file, 'manifest.json']).stdout);
      assert.equal(manifest.length, 2);
      // base is one tar; the other image's directory links to it, as dockerd does.
      assert.equal(list.filter((n) => n.endsWith('/layer.tar')).length, 4);
      const verbose = runSync('tar', ['-tvf', file]).stdout;
      assert.equal((verbose.match(/layer\.tar -> \.\.\/[0-9a-f]{64}\/layer\.tar/g) ?? []).length, 1, verbose);

      const gz = join(work, 'both.tar.gz');
      writeFileSync(gz, gzipSync(readFileSync(file)));
      const fresh = await startDaemon();
      try {
        const l = await dk(fresh, ['load', '-i', gz]);
        assert.equal(l.code, 0, l.stderr);
        assert.match(l.stdout, /Loaded image: .*src\/app:v1/);
        assert.match(l.stdout, /Loaded image: .*src\/two:v1/);
        assert.equal((await inspect(fresh, `${reg.host}/src/two:v1`)).Id, two.imageId);
        assert.equal((await inspect(fresh, `${reg.host}/src/app:v1`)).Id, img.imageId);
        assertOnlyCommittedLayers(fresh);
        await assertCheckClean(fresh);
      } finally {
        fresh.cleanup();
      }
    });

    test('an OCI image layout archive loads (index → index → manifest for this platform, gzip\'d layer blobs)', async () => {
      const dir = join(work, 'oci');
      mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
      const put = (data: Buffer): string => {
        const dg = sha256(data);
        writeFileSync(join(dir, 'blobs', 'sha256', dg.slice(7)), data);
        return dg;
      };
      const layers = ociLayers;
      const config = makeConfig({ diffIds: layers.map((l) => l.diffId), labels: { from: 'oci' } });
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: { mediaType: MT.ociConfig, digest: put(config), size: config.length },
          layers: layers.map((l) => ({ mediaType: MT.ociLayer, digest: put(l.gz), size: l.gz.length })),
        }),
      );
      const other = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: `sha256:${'1'.repeat(64)}`, size: 2 }, layers: [] }));
      const inner = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.ociIndex,
          manifests: [
            { mediaType: MT.ociManifest, digest: put(other), size: other.length, platform: { os: 'linux', architecture: 's390x' } },
            { mediaType: MT.ociManifest, digest: put(manifest), size: manifest.length, platform: { os: 'linux', architecture: hostArch() } },
          ],
        }),
      );
      writeFileSync(
        join(dir, 'index.json'),
        JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociIndex, digest: put(inner), size: inner.length, annotations: { 'io.containerd.image.name': 'oci/loaded:v2', 'org.opencontainers.image.ref.name': 'v2' } }] }),
      );
      writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      const file = join(work, 'oci.tar');
      assert.equal(runSync('tar', ['-cf', file, '-C', dir, 'index.json', 'blobs', 'oci-layout']).code, 0);
      const l = await dk(d, ['load', '-i', file]);
      assert.equal(l.code, 0, l.stderr);
      assert.match(l.stdout, /Loaded image: oci\/loaded:v2/);
      const ins = await inspect(d, 'oci/loaded:v2');
      assert.equal(ins.Id, sha256(config));
      assert.deepEqual(ins.RootFS.Layers, layers.map((x) => x.diffId));
      assertOnlyCommittedLayers(d);
      await assertCheckClean(d);
    });

    test('corrupt and truncated archives are errors and leave the store unchanged', async () => {
      const good = readFileSync(join(work, 'round.tar'));
      const fresh = await startDaemon();
      try {
        const cases: Array<[string, Buffer]> = [
          ['garbage', pseudoRandom(10_000, 'garbage')],
          ['truncated', good.subarray(0, Math.floor(good.length * 0.7))],
          ['truncated gzip', gzipSync(good).subarray(0, 50_000)],
        ];
        // A layer whose bytes no longer match the config's DiffID.
        const flipped = Buffer.from(good);
        const at = good.indexOf(pseudoRandom(300_000, 'tool').subarray(0, 64)) + 1000;
        assert.ok(at > 1000, 'the base layer\'s file is in the archive');
        flipped[at] = (flipped[at] as number) ^ 0xff;
        cases.push(['flipped byte', flipped]);
        for (const [what, data] of cases) {
          const f = join(work, 'bad.tar');
          writeFileSync(f, data);
          const l = await dk(fresh, ['load', '-i', f]);
          assert.equal(l.code, 1, `${what}: ${l.stdout}${l.stderr}`);
          assert.match(l.stderr, /archive\/tar: |invalid|unexpected EOF|gzip/, what);
          assert.equal(await imageIds(fresh), '', `${what}: no image`);
          assert.deepEqual(readdirSync(join(fresh.dataRoot, 'layerdb')).filter((n) => n.endsWith('.json')), [], `${what}: no layer`);
          assertOnlyCommittedLayers(fresh);
        }
        const flippedMsg = (await dk(fresh, ['load', '-i', join(work, 'bad.tar')])).stderr;
        assert.match(flippedMsg, /invalid diffID for layer 0: expected "sha256:[0-9a-f]{64}", got "sha256:[0-9a-f]{64}"/);
      } finally {
        fresh.cleanup();
      }
    });

    test('docker load of a delta image patches it against the local base: the target appears; no base is an error', async () => {
      // The target: the app layer with a small edit. d makes the delta, d2 (which has src/app:v1) loads it.
      const data = Buffer.from(pseudoRandom(1_500_000, 'app'));
      data.write('a small change', 700_000);
      const app2 = await makeLayer([
        { name: 'etc/.wh.old.conf' },
        { name: 'app/', type: 'directory' },
        { name: 'app/data.bin', data },
        { name: 'app/run', type: 'symlink', linkname: '/bin/tool' },
      ]);
      const target = await reg.pushImage('src/app2', 'v1', [base, app2]);
      assert.equal((await dk(d, ['pull', `${reg.host}/src/app2:v1`])).code, 0);
      const made = await new Promise<string>((resolve, reject) => {
        const q = `src=${encodeURIComponent(`${reg.host}/src/app:v1`)}&dest=${encodeURIComponent(`${reg.host}/src/app2:v1`)}&t=${encodeURIComponent(`${reg.host}/src/app2:delta`)}`;
        const req = httpRequest({ socketPath: d.socket, method: 'POST', path: `/images/delta?${q}`, headers: { host: 'docker' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end();
      });
      assert.match(made, /Created delta: sha256:[0-9a-f]{64}/, made);
      const file = join(work, 'delta.tar');
      assert.equal((await dk(d, ['save', '-o', file, `${reg.host}/src/app2:delta`])).code, 0);
      assert.ok(readFileSync(file).length < 100_000, 'the saved delta image is small');

      const fresh = await startDaemon();
      try {
        const no = await dk(fresh, ['load', '-i', file]);
        assert.equal(no.code, 1);
        assert.match(no.stderr, new RegExp(`loading delta base image "${img.imageId}": `));
        assert.equal(await imageIds(fresh), '');
        assertOnlyCommittedLayers(fresh);
      } finally {
        fresh.cleanup();
      }

      assert.equal((await dk(d2, ['image', 'inspect', target.imageId])).code, 1);
      const l = await dk(d2, ['load', '-i', file]);
      assert.equal(l.code, 0, l.stderr + l.stdout);
      assert.match(l.stdout, /Loaded image: .*src\/app2:delta/);
      const got = await inspect(d2, `${reg.host}/src/app2:delta`);
      assert.equal(got.Id, target.imageId);
      assert.deepEqual(got.RootFS.Layers, [base.diffId, app2.diffId]);
      assertOnlyCommittedLayers(d2);
      await assertCheckClean(d2);
      // Again: the target is there already.
      assert.equal((await dk(d2, ['load', '-i', file])).code, 0);
    });

    test('a layer that no longer matches its DiffID on disk fails the save instead of writing a wrong archive', async () => {
      const fresh = await startDaemon();
      try {
        assert.equal((await dk(fresh, ['load', '-i', join(work, 'round.tar')])).code, 0);
        const db = join(fresh.dataRoot, 'layerdb');
        const rec = readdirSync(db)
          .filter((n) => n.endsWith('.json'))
          .map((n) => JSON.parse(readFileSync(join(db, n), 'utf8')) as { cacheId: string; diffId: string })
          .find((r) => r.diffId === app.diffId);
        assert.ok(rec);
        const f = join(fresh.dataRoot, 'overlay2', rec.cacheId, 'diff', 'app', 'data.bin');
        const data = readFileSync(f);
        data[1000] = (data[1000] as number) ^ 1;
        writeFileSync(f, data);
        const out = join(work, 'broken.tar');
        const s = await dk(fresh, ['save', '-o', out, `${reg.host}/src/app:v1`]);
        // The daemon cuts the stream: the docker CLI fails (the partial file it leaves is its own doing).
        assert.notEqual(s.code, 0, s.stdout);
        rmSync(out, { force: true });
        const k = await run(SKIFF, ['-H', fresh.host, 'save', '-o', out, `${reg.host}/src/app:v1`]);
        assert.equal(k.code, 1);
        assert.ok(!readdirSync(work).some((n) => n.startsWith('broken.tar')), 'skiff save -o leaves no file');
      } finally {
        fresh.cleanup();
      }
    });

    test('rmi during docker save: the image goes, the archive is still whole, then its layers go', async () => {
      const layer = await makeLayer([{ name: 'save.bin', data: pseudoRandom(12 << 20, 'rmi during save') }]);
      const pushed = await reg.pushImage('src/saverm', 'v1', [layer]);
      const name = `${reg.host}/src/saverm:v1`;
      assert.equal((await dk(d, ['pull', name])).code, 0);
      const parts: Buffer[] = [];
      let removal: Promise<{ status: number; body: string }> | undefined;
      const status = await apiStream(d, 'GET', `/images/${encodeURIComponent(name)}/get`, {}, (c, res) => {
        parts.push(c);
        if (removal) return;
        // The client stops reading: the daemon's stream waits (backpressure) with most of the layer unsent.
        res.pause();
        removal = apiCall(d, 'DELETE', `/images/${encodeURIComponent(name)}`).finally(() => res.resume());
      });
      assert.equal(status, 200);
      const r = await (removal as Promise<{ status: number; body: string }>);
      assert.equal(r.status, 200, r.body);
      assert.deepEqual((JSON.parse(r.body) as Array<{ Deleted?: string }>).filter((x) => x.Deleted).map((x) => x.Deleted), [pushed.imageId], 'the image, not its layer');
      const file = join(work, 'saverm.tar');
      writeFileSync(file, Buffer.concat(parts));
      const manifest = JSON.parse(runSync('tar', ['-xOf', file, 'manifest.json']).stdout) as Array<{ Layers: string[] }>;
      const tar = spawnSync('tar', ['-xOf', file, manifest[0]?.Layers[0] as string], { maxBuffer: 64 << 20 });
      assert.equal(sha256(tar.stdout), layer.diffId);
      assert.equal(layerRecorded(d, layer.diffId), false, 'the layer went with the end of the save');
      await assertCheckClean(d);
    });

    test('skiff save and skiff load', async () => {
      const file = join(work, 'skiff.tar');
      const s = await run(SKIFF, ['-H', d.host, 'save', '-o', file, `${reg.host}/src/app:v1`]);
      assert.equal(s.code, 0, s.stderr);
      assert.deepEqual(readFileSync(file), readFileSync(join(work, 'round.tar')), 'the same image saves to the same bytes');
      const missing = await run(SKIFF, ['-H', d.host, 'save', '-o', join(work, 'none.tar'), 'no/such:image']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /No such image: no\/such:image/);
      assert.ok(!readdirSync(work).some((n) => n.startsWith('none.tar')), 'no file left behind');
      const l = await run(SKIFF, ['-H', d2.host, 'load', '-i', file]);
      assert.equal(l.code, 0, l.stderr);
      assert.match(l.stdout, /Loaded image: /);
    });
  });

  describe('load over the API', () => {
    /** POST /images/load with `body`, of which only `sendFirst` bytes are sent when given (the request is then left open). */
    function postLoad(daemon: TestDaemon, query: string, body: Buffer, sendFirst?: number): { response: Promise<{ status: number; type: string | undefined; text: string }>; req: ClientRequest } {
      const req = httpRequest({ socketPath: daemon.socket, method: 'POST', path: `/v1.41/images/load${query}`, headers: { 'content-type': 'application/x-tar', 'content-length': String(body.length) } });
      const response = new Promise<{ status: number; type: string | undefined; text: string }>((resolve, reject) => {
        req.on('response', (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text }));
          res.on('error', reject);
        });
        req.on('error', reject);
      });
      if (sendFirst === undefined) req.end(body);
      else req.write(body.subarray(0, sendFirst));
      return { response, req };
    }

    test('quiet=0 streams Loading layer progress, then the Loaded image line; quiet=1 only the latter', async () => {
      const archive = readFileSync(join(work, 'round.tar'));
      const fresh = await startDaemon();
      try {
        const loud = await postLoad(fresh, '?quiet=0', archive).response;
        assert.equal(loud.status, 200);
        assert.equal(loud.type, 'application/json');
        const lines = loud.text.trim().split('\r\n').map((l) => JSON.parse(l));
        const progress = lines.filter((l) => l.status === 'Loading layer');
        assert.ok(progress.length >= 2, loud.text);
        assert.ok(progress.every((l) => /^[0-9a-f]{12}$/.test(l.id) && typeof l.progressDetail.current === 'number' && typeof l.progressDetail.total === 'number' && typeof l.progress === 'string'));
        assert.deepEqual(lines[lines.length - 1], { stream: `Loaded image: ${reg.host}/src/app:v1\n` });
        const quiet = await postLoad(fresh, '?quiet=1', archive).response;
        assert.equal(quiet.status, 200);
        assert.equal(quiet.text, `{"stream":"Loaded image: ${reg.host}/src/app:v1\\n"}\r\n`);
        // Without `quiet`, dockerd is quiet.
        const dflt = await postLoad(fresh, '', archive).response;
        assert.equal(dflt.text, `{"stream":"Loaded image: ${reg.host}/src/app:v1\\n"}\r\n`);
        // The tag moves to another image: dockerd says so first.
        const dir = join(work, 'retag');
        mkdirSync(join(dir, 'l1'), { recursive: true });
        mkdirSync(join(dir, 'l2'));
        writeFileSync(join(dir, 'l1', 'layer.tar'), base.tar);
        writeFileSync(join(dir, 'l2', 'layer.tar'), app.tar);
        const config = makeConfig({ diffIds: [base.diffId, app.diffId], labels: { retagged: 'yes' } });
        writeFileSync(join(dir, 'c.json'), config);
        writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'c.json', RepoTags: [`${reg.host}/src/app:v1`], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]));
        assert.equal(runSync('tar', ['-cf', join(work, 'retag.tar'), '-C', dir, '.']).code, 0);
        const retag = await postLoad(fresh, '?quiet=1', readFileSync(join(work, 'retag.tar'))).response;
        assert.equal(
          retag.text,
          `{"stream":"The image ${reg.host}/src/app:v1 already exists, renaming the old one with ID ${img.imageId} to empty string\\n"}\r\n` +
            `{"stream":"Loaded image: ${reg.host}/src/app:v1\\n"}\r\n`,
        );
        assert.equal((await inspect(fresh, `${reg.host}/src/app:v1`)).Id, sha256(config));
        // As dockerd: the error is a line of the 200 stream (the docker CLI prints it, exits 1).
        const bad = await postLoad(fresh, '', Buffer.from('this is no tar archive at all'.repeat(40))).response;
        assert.equal(bad.status, 200, bad.text);
        assert.equal(bad.type, 'application/json');
        const line = JSON.parse(bad.text) as { error: string; errorDetail: { message: string } };
        assert.match(line.errorDetail.message, /^archive\/tar: /);
        assert.equal(line.error, line.errorDetail.message);
      } finally {
        fresh.cleanup();
      }
    });

    test('kill -9 in the middle of a load leaves no image and no layer behind after a restart', async () => {
      const big = await makeLayer([{ name: 'big/', type: 'directory' }, { name: 'big/one', data: pseudoRandom(6_000_000, 'kill-one') }, { name: 'big/two', data: pseudoRandom(6_000_000, 'kill-two') }]);
      const config = makeConfig({ diffIds: [base.diffId, big.diffId] });
      const dir = mkdtempSync(join(tmpdir(), 'skiff-transport-kill-'));
      const layout = join(dir, 'archive');
      mkdirSync(join(layout, 'l1'), { recursive: true });
      mkdirSync(join(layout, 'l2'));
      writeFileSync(join(layout, 'l1', 'layer.tar'), base.tar);
      writeFileSync(join(layout, 'l2', 'layer.tar'), big.tar);
      writeFileSync(join(layout, 'cfg.json'), config);
      writeFileSync(join(layout, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', RepoTags: ['killed:v1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]));
      const file = join(dir, 'kill.tar');
      assert.equal(runSync('tar', ['-cf', file, '-C', layout, 'l1', 'l2', 'cfg.json', 'manifest.json']).code, 0);
      const archive = readFileSync(file);
      const daemonDir = join(dir, 'daemon');
      mkdirSync(daemonDir);
      let k = await startDaemon({ dir: daemonDir });
      try {
        // Everything up to the middle of the big layer: the first layer is extracted, the second half-way.
        const { req, response } = postLoad(k, '?quiet=1', archive, base.tar.length + 6_000_000);
        response.catch(() => undefined);
        req.on('error', () => undefined);
        const tmp = join(k.dataRoot, 'layerdb', 'tmp');
        const deadline = Date.now() + 20_000;
        while (readdirSync(tmp).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(readdirSync(tmp).length, 2, 'two layers in flight');
        assert.equal(await k.stop('SIGKILL'), null);
        req.destroy();
        k = await startDaemon({ dir: daemonDir });
        assert.equal(await imageIds(k), '');
        assertOnlyCommittedLayers(k);
        assert.deepEqual(readdirSync(join(k.dataRoot, 'layerdb')).filter((n) => n.endsWith('.json')), []);
        // And the same archive loads completely afterwards.
        const l = await dk(k, ['load', '-i', file]);
        assert.equal(l.code, 0, l.stderr);
        assert.equal((await inspect(k, 'killed:v1')).Id, sha256(config));
        await assertCheckClean(k);
      } finally {
        k.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('Docker 25\'s save layout (manifest.json naming blobs, index.json beside it) loads', async () => {
      const dir = join(work, 'docker25');
      mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
      const put = (data: Buffer): string => {
        const dg = sha256(data);
        writeFileSync(join(dir, 'blobs', 'sha256', dg.slice(7)), data);
        return dg;
      };
      const layers = [base, app];
      const config = makeConfig({ diffIds: layers.map((l) => l.diffId), labels: { from: 'docker25' } });
      const cfg = put(config);
      const ld = layers.map((l) => put(l.tar));
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: cfg, size: config.length }, layers: layers.map((l, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: ld[i], size: l.tar.length })) }));
      const md = put(manifest);
      writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: md, size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/d25:v1', 'org.opencontainers.image.ref.name': 'v1' } }] }));
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${cfg.slice(7)}`, RepoTags: ['d25:v1'], Layers: ld.map((d) => `blobs/sha256/${d.slice(7)}`) }]));
      writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      const file = join(work, 'docker25.tar');
      // manifest.json first this time: order must not matter.
      assert.equal(runSync('tar', ['-cf', file, '-C', dir, 'manifest.json', 'blobs', 'index.json', 'oci-layout']).code, 0);
      const l = await dk(d2, ['load', '-i', file]);
      assert.equal(l.code, 0, l.stderr);
      assert.match(l.stdout, /^Loaded image: d25:v1$/m);
      assert.equal((await inspect(d2, 'd25:v1')).Id, sha256(config));
      assertOnlyCommittedLayers(d2);
    });
  });

  describe('dockerode', () => {
    test('getImage().get(), loadImage() and image.push() with authconfig', async () => {
      const docker = new Docker({ socketPath: d.socket });
      const name = `${reg.host}/src/app:v1`;
      const tar = await docker.getImage(name).get();
      const chunks: Buffer[] = [];
      for await (const c of tar) chunks.push(c as Buffer);
      const archive = Buffer.concat(chunks);
      assert.deepEqual(archive, readFileSync(join(work, 'round.tar')));
      const fresh = await startDaemon();
      try {
        const other = new Docker({ socketPath: fresh.socket });
        const res = await other.loadImage(Readable.from([archive]), { quiet: false });
        const out: Array<{ stream?: string; status?: string; error?: string }> = await new Promise((resolve, reject) => other.modem.followProgress(res, (err: Error | null, o: Array<{ stream?: string }>) => (err ? reject(err) : resolve(o))));
        assert.ok(out.some((m) => m.status === 'Loading layer'), JSON.stringify(out));
        assert.ok(out.some((m) => m.stream === `Loaded image: ${name}\n`), JSON.stringify(out));
        await other.getImage(name).tag({ repo: `${reg.host}/dockerode/app`, tag: 'v1' });
        const push = await other.getImage(`${reg.host}/dockerode/app:v1`).push({ authconfig: { username: 'x', password: 'y', serveraddress: reg.host } });
        const pushed: Array<{ status?: string; aux?: { Tag: string; Digest: string; Size: number }; error?: string }> = await new Promise((resolve, reject) => other.modem.followProgress(push, (err: Error | null, o: Array<{ status?: string }>) => (err ? reject(err) : resolve(o))));
        assert.ok(!pushed.some((m) => m.error), JSON.stringify(pushed));
        const aux = pushed.find((m) => m.aux)?.aux;
        assert.equal(aux?.Tag, 'v1');
        assert.match(aux?.Digest ?? '', /^sha256:[0-9a-f]{64}$/);
        assert.ok((aux?.Size ?? 0) > 0);
        assert.ok(pushed.some((m) => m.status === `v1: digest: ${aux?.Digest} size: ${aux?.Size}`));
      } finally {
        fresh.cleanup();
      }
    });
  });

  describe('push', () => {
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const short = (d: string) => d.slice(7, 19);
    const digestLine = (out: string, tag: string): string => {
      const m = new RegExp(`${tag}: digest: (sha256:[0-9a-f]{64}) size: (\\d+)`).exec(out);
      assert.ok(m, out);
      return m[1] as string;
    };
    async function registryManifest(host: string, repo: string, tag: string): Promise<{ layers: Array<{ digest: string; mediaType: string; size: number }>; config: { digest: string } }> {
      const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { headers: { accept: MT.dockerManifest } });
      assert.equal(res.status, 200);
      return (await res.json()) as { layers: Array<{ digest: string; mediaType: string; size: number }>; config: { digest: string } };
    }
    async function pullBack(name: string, want: { id: string; diffIds: string[] }): Promise<void> {
      const fresh = await startDaemon();
      try {
        const p = await dk(fresh, ['pull', name]);
        assert.equal(p.code, 0, p.stdout + p.stderr);
        const ins = await inspect(fresh, name);
        assert.equal(ins.Id, want.id);
        assert.deepEqual(ins.RootFS.Layers, want.diffIds);
        await assertCheckClean(fresh);
      } finally {
        fresh.cleanup();
      }
    }

    test('a pulled image pushed to another repository of its registry mounts its layers and keeps their digests', async () => {
      const name = `${reg.host}/dst/app:v1`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/app:v1`, name])).code, 0);
      const p = await dk(d, ['push', name]);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.match(p.stdout, new RegExp(`The push refers to repository \\[${esc(reg.host)}/dst/app\\]`));
      assert.match(p.stdout, new RegExp(`${short(base.diffId)}: Mounted from src/app`));
      assert.match(p.stdout, new RegExp(`${short(app.diffId)}: Mounted from src/app`));
      const digest = digestLine(p.stdout, 'v1');
      const m = await registryManifest(reg.host, 'dst/app', 'v1');
      assert.deepEqual(m.layers.map((l) => l.digest), [base.digest, app.digest], 'the original compressed blobs');
      assert.equal(m.config.digest, img.configDigest);
      assert.equal(sha256(Buffer.from(await (await fetch(`http://${reg.host}/v2/dst/app/manifests/v1`, { headers: { accept: MT.dockerManifest } })).arrayBuffer())), digest);
      const ins = JSON.parse((await dk(d, ['image', 'inspect', name])).stdout)[0];
      assert.ok(ins.RepoDigests.includes(`${reg.host}/dst/app@${digest}`), JSON.stringify(ins.RepoDigests));
      await pullBack(name, { id: img.imageId, diffIds: [base.diffId, app.diffId] });
    });

    test('an image made locally uploads; a re-push finds every layer; another daemon pushes the same digests; a second repository mounts', async () => {
      const name = `${reg.host}/made/app:v1`;
      assert.equal((await dk(d, ['tag', 'oci/loaded:v2', name])).code, 0);
      const ins = await inspect(d, name);
      const p = await dk(d, ['push', name]);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      const [o1, o2] = ociLayers.map((l) => short(l.diffId));
      assert.match(p.stdout, new RegExp(`${o1}: Pushed`));
      assert.match(p.stdout, new RegExp(`${o2}: Pushed`));
      const first = digestLine(p.stdout, 'v1');
      const m = await registryManifest(reg.host, 'made/app', 'v1');
      assert.ok(m.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));

      const again = await dk(d, ['push', name]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, new RegExp(`${o1}: Layer already exists`));
      assert.match(again.stdout, new RegExp(`${o2}: Layer already exists`));
      assert.doesNotMatch(again.stdout, /Pushed/);
      assert.equal(digestLine(again.stdout, 'v1'), first, 'a re-push gives the same manifest digest');

      // Another data root knows nothing about these blobs: it recompresses and gets the same bytes.
      assert.equal((await dk(d2, ['load', '-i', join(work, 'oci.tar')])).code, 0);
      const other = `${reg.host}/made2/app:v1`;
      assert.equal((await dk(d2, ['tag', 'oci/loaded:v2', other])).code, 0);
      const p2 = await dk(d2, ['push', other]);
      assert.equal(p2.code, 0, p2.stdout + p2.stderr);
      assert.match(p2.stdout, /Pushed/);
      assert.equal(digestLine(p2.stdout, 'v1'), first, 'deterministic compression: the same digests from another daemon');
      assert.deepEqual((await registryManifest(reg.host, 'made2/app', 'v1')).layers, m.layers);

      const third = `${reg.host}/made3/app:v1`;
      assert.equal((await dk(d, ['tag', name, third])).code, 0);
      const p3 = await dk(d, ['push', third]);
      assert.equal(p3.code, 0, p3.stdout + p3.stderr);
      assert.match(p3.stdout, new RegExp(`${o1}: Mounted from made/app`));
      assert.match(p3.stdout, new RegExp(`${o2}: Mounted from made/app`));
      assert.equal(digestLine(p3.stdout, 'v1'), first);
      await pullBack(third, { id: ins.Id, diffIds: ins.RootFS.Layers });
    });

    test('a connection cut between two chunks of a layer: the push goes on from the registry\'s offset, the same upload', async () => {
      // Incompressible, so the gzip'd layer is ~12 MB: two 5 MiB PATCHes and a closing PUT with the rest.
      const big = await makeLayer([{ name: 'big.bin', data: pseudoRandom(12_000_000, 'chunks') }]);
      const src = await reg.pushImage('src/chunks', 'v1', [big]);
      assert.equal((await dk(d, ['pull', `${reg.host}/src/chunks:v1`])).code, 0);
      // Through the proxy the registry is another host: nothing to skip or mount, the layer is uploaded.
      const name = `${proxy.host}/resume/chunks:v1`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/chunks:v1`, name])).code, 0);
      const from = proxy.log.length;
      let patches = 0;
      const second = (req: IncomingMessage) => req.method === 'PATCH' && req.url?.includes('/resume/chunks/blobs/uploads/') === true && ++patches === 2;
      proxy.addFault({ method: 'PATCH', match: second, fault: { kind: 'cutRequest', after: 0 }, times: 1 });
      const p = await dk(d, ['push', name], { timeout: 120_000 });
      proxy.clearFaults();
      assert.equal(p.code, 0, p.stdout + p.stderr + d.logs());
      assert.match(p.stdout, /Retrying in 1 second/);
      const log = proxy.log.slice(from).filter((e) => e.url.includes('/resume/chunks/blobs/uploads/'));
      const cut = log.findIndex((e) => e.fault === 'cutRequest');
      assert.ok(cut > 0, 'the second PATCH was cut');
      const before = log.slice(0, cut);
      // Then the config blob: its own POST and PUT.
      const after = log.slice(cut + 1, cut + 4);
      assert.deepEqual(before.map((e) => `${e.method} ${e.status}`), ['POST 202', 'PATCH 202']);
      const MiB5 = 5 * 1024 * 1024;
      assert.equal(before[1]?.requestBytes, MiB5);
      assert.deepEqual(after.map((e) => `${e.method} ${e.status}`), ['GET 204', 'PATCH 202', 'PUT 201'], 'the same upload went on: no new POST');
      const blob = (await registryManifest(proxy.host, 'resume/chunks', 'v1')).layers[0]?.size ?? 0;
      assert.ok(blob > 2 * MiB5, `the layer blob is ${blob} bytes`);
      const sentAfter = after.reduce((n, e) => n + e.requestBytes, 0);
      assert.equal(sentAfter, blob - MiB5, `after the cut ${sentAfter} of ${blob} bytes were sent`);
      assert.equal(after[1]?.headers['content-range'], `${MiB5}-${2 * MiB5 - 1}`);
      const digest = digestLine(p.stdout, 'v1');
      // The same image pushed without faults gives the same manifest: the resumed blob is byte-identical.
      const clean = `${proxy.host}/resume/chunks-clean:v1`;
      assert.equal((await dk(d, ['tag', name, clean])).code, 0);
      const p2 = await dk(d, ['push', clean]);
      assert.equal(p2.code, 0, p2.stdout + p2.stderr);
      assert.equal(digestLine(p2.stdout, 'v1'), digest);
      await pullBack(`${reg.host}/resume/chunks:v1`, { id: src.imageId, diffIds: [big.diffId] });
    });

    test('a registry that refuses chunks (413 to a PATCH with Content-Range) gets each layer as one streamed PATCH', async () => {
      const nochunks = await startFaultProxy(reg.url);
      try {
        const big = await makeLayer([{ name: 'big.bin', data: pseudoRandom(7_000_000, 'no chunks') }]);
        const src = await reg.pushImage('src/nochunks', 'v1', [big]);
        assert.equal((await dk(d, ['pull', `${reg.host}/src/nochunks:v1`])).code, 0);
        const name = `${nochunks.host}/nochunks/app:v1`;
        assert.equal((await dk(d, ['tag', `${reg.host}/src/nochunks:v1`, name])).code, 0);
        nochunks.addFault({ method: 'PATCH', match: (req) => req.headers['content-range'] !== undefined, fault: { kind: 'status', status: 413, body: 'too large' }, times: Infinity });
        const p = await dk(d, ['push', name], { timeout: 120_000 });
        assert.equal(p.code, 0, p.stdout + p.stderr + d.logs());
        assert.doesNotMatch(p.stdout, /Retrying/);
        const uploads = nochunks.log.filter((e) => e.url.includes('/nochunks/app/blobs/uploads/'));
        const blob = (await registryManifest(nochunks.host, 'nochunks/app', 'v1')).layers[0]?.size ?? 0;
        // The refused chunk, its upload cancelled, a fresh upload with the whole layer in one PATCH, then the config.
        assert.deepEqual(uploads.slice(0, 6).map((e) => `${e.method} ${e.status}`), ['POST 202', 'PATCH 413', 'DELETE 204', 'POST 202', 'PATCH 202', 'PUT 201']);
        assert.equal(uploads[4]?.headers['content-range'], undefined);
        assert.equal(uploads[4]?.requestBytes, blob);
        await pullBack(name.replace(nochunks.host, reg.host), { id: src.imageId, diffIds: [big.diffId] });
      } finally {
        await nochunks.stop();
      }
    });

    test('a connection cut inside a chunk: docker-registry cancels that upload, skiff starts the blob over, the same blob', async () => {
      const big = await makeLayer([{ name: 'big.bin', data: pseudoRandom(3_000_000, 'resume') }]);
      const src = await reg.pushImage('src/big', 'v1', [big]);
      assert.equal((await dk(d, ['pull', `${reg.host}/src/big:v1`])).code, 0);
      const name = `${proxy.host}/resume/big:v1`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/big:v1`, name])).code, 0);
      const from = proxy.log.length;
      // Smaller than a chunk: the whole layer is the closing PUT's body.
      proxy.addFault({ method: 'PUT', match: (req) => req.url?.includes('/resume/big/blobs/uploads/') === true, fault: { kind: 'cutRequest', after: 1_200_000 }, times: 1 });
      const p = await dk(d, ['push', name], { timeout: 120_000 });
      proxy.clearFaults();
      assert.equal(p.code, 0, p.stdout + p.stderr + d.logs());
      assert.match(p.stdout, /Retrying in 1 second/);
      const log = proxy.log.slice(from).filter((e) => e.url.includes('/resume/big/blobs/uploads/'));
      const cut = log.findIndex((e) => e.fault === 'cutRequest');
      assert.ok(cut > 0, 'the PUT was cut');
      assert.ok((log[cut]?.requestBytes ?? 0) >= 1_000_000, `the first PUT sent ${log[cut]?.requestBytes} bytes`);
      // distribution keeps the bytes that arrived, so its size no longer matches the upload's last
      // `_state` token: it cancels the upload on the next request ("upload resumed at wrong offset")
      // and answers 404. A fresh upload carries the whole blob again.
      const after = log.slice(cut + 1, cut + 4);
      assert.deepEqual(after.map((e) => `${e.method} ${e.status}`), ['GET 404', 'POST 202', 'PUT 201']);
      assert.equal(after[2]?.requestBytes, (await registryManifest(proxy.host, 'resume/big', 'v1')).layers[0]?.size);
      const digest = digestLine(p.stdout, 'v1');
      const clean = `${proxy.host}/resume/clean:v1`;
      assert.equal((await dk(d, ['tag', name, clean])).code, 0);
      const p2 = await dk(d, ['push', clean]);
      assert.equal(p2.code, 0, p2.stdout + p2.stderr);
      assert.equal(digestLine(p2.stdout, 'v1'), digest);
      await pullBack(`${reg.host}/resume/big:v1`, { id: src.imageId, diffIds: [big.diffId] });
    });

    test('a registry that refuses the manifest: its own error text reaches the docker CLI', async () => {
      const layer = await makeLayer([{ name: 'refused.bin', data: pseudoRandom(100_000, 'manifest refused') }]);
      await reg.pushImage('src/refused', 'v1', [layer]);
      assert.equal((await dk(d, ['pull', `${reg.host}/src/refused:v1`])).code, 0);
      const name = `${proxy.host}/refused/app:v1`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/refused:v1`, name])).code, 0);
      const body = JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: 'injected: no such layer policy' }] });
      proxy.addFault({ method: 'PUT', match: /\/refused\/app\/manifests\//, fault: { kind: 'status', status: 400, body, headers: { 'content-type': 'application/json' } } });
      const p = await dk(d, ['push', name]);
      proxy.clearFaults();
      assert.equal(p.code, 1, p.stdout + p.stderr);
      assert.match(p.stderr, /manifest invalid/);
    });

    test('POST /images/{name}/push streams dockerd\'s JSON progress: repository line, per layer Preparing → Pushing {current,total} → Pushed, digest line and aux', async () => {
      const layer = await makeLayer([{ name: 'p.bin', data: pseudoRandom(600_000, 'json progress') }]);
      await reg.pushImage('src/jsonp', 'v1', [layer]);
      assert.equal((await dk(d, ['pull', `${reg.host}/src/jsonp:v1`])).code, 0);
      const name = `${proxy.host}/jsonp/app`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/jsonp:v1`, `${name}:v1`])).code, 0);
      const auth = Buffer.from(JSON.stringify({ username: '', password: '', serveraddress: proxy.host })).toString('base64url');
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest({ socketPath: d.socket, method: 'POST', path: `/v1.41/images/${encodeURIComponent(name)}/push?tag=v1`, headers: { host: 'docker', 'x-registry-auth': auth } }, (res) => {
          let t = '';
          res.on('data', (c: Buffer) => (t += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200, text);
      const msgs = text.split('\r\n').filter(Boolean).map((l) => JSON.parse(l) as { status?: string; id?: string; progressDetail?: { current?: number; total?: number }; progress?: string; aux?: { Tag: string; Digest: string; Size: number }; error?: string });
      assert.deepEqual(msgs[0], { status: `The push refers to repository [${name}]` });
      const id = short(layer.diffId);
      const mine = msgs.filter((m) => m.id === id);
      assert.equal(mine[0]?.status, 'Preparing');
      assert.equal(mine[mine.length - 1]?.status, 'Pushed');
      const pushing = mine.filter((m) => m.status === 'Pushing');
      assert.ok(pushing.length >= 1, JSON.stringify(mine));
      const last = pushing[pushing.length - 1];
      assert.equal(last?.progressDetail?.total, layer.tar.length, 'progress counts the uncompressed layer, as dockerd');
      assert.equal(last?.progressDetail?.current, layer.tar.length);
      assert.match(last?.progress ?? '', /^\[=+>?\s*\] +\d/);
      for (const m of pushing) assert.ok((m.progressDetail?.current ?? -1) <= (m.progressDetail?.total ?? 0));
      const aux = msgs.find((m) => m.aux)?.aux;
      assert.equal(aux?.Tag, 'v1');
      assert.equal(msgs.find((m) => m.status?.startsWith('v1: digest: '))?.status, `v1: digest: ${aux?.Digest} size: ${aux?.Size}`);
      assert.equal(msgs.find((m) => m.error), undefined);
      assert.equal((await registryManifest(proxy.host, 'jsonp/app', 'v1')).layers.length, 1);
    });

    test('rmi during a push: the image goes, the push completes from the held layers, then they go', async () => {
      const layer = await makeLayer([{ name: 'push.bin', data: pseudoRandom(1_000_000, 'rmi during push') }]);
      const src = await reg.pushImage('src/pushrm', 'v1', [layer]);
      assert.equal((await dk(d, ['pull', `${reg.host}/src/pushrm:v1`])).code, 0);
      const name = `${proxy.host}/pushrm/app`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/pushrm:v1`, `${name}:v1`])).code, 0);
      // The layer's upload is refused once: the push waits a second before its retry, and the image is removed meanwhile.
      proxy.addFault({ method: 'PUT', match: (req) => req.url?.includes('/pushrm/app/blobs/uploads/') === true, fault: { kind: 'status', status: 503 }, times: 1 });
      const auth = Buffer.from('{}').toString('base64url');
      let text = '';
      let removal: Promise<{ status: number; body: string }> | undefined;
      const status = await apiStream(d, 'POST', `/images/${encodeURIComponent(name)}/push?tag=v1`, { 'x-registry-auth': auth }, (c) => {
        text += c.toString();
        if (!removal && text.includes('Retrying in')) removal = apiCall(d, 'DELETE', `/images/${encodeURIComponent(src.imageId)}?force=1`);
      });
      proxy.clearFaults();
      assert.equal(status, 200);
      assert.ok(removal, text);
      const r = await removal;
      assert.equal(r.status, 200, r.body);
      assert.deepEqual((JSON.parse(r.body) as Array<{ Deleted?: string }>).filter((x) => x.Deleted).map((x) => x.Deleted), [src.imageId]);
      assert.doesNotMatch(text, /"error"/, text);
      assert.match(text, /v1: digest: sha256:[0-9a-f]{64}/);
      assert.equal(layerRecorded(d, layer.diffId), false);
      await pullBack(`${name}:v1`, { id: src.imageId, diffIds: [layer.diffId] });
    });

    test('rmi while the push is first asking the registry: the push completes from the held layers', async () => {
      const layer = await makeLayer([{ name: 'prep.bin', data: pseudoRandom(300_000, 'rmi during push prepare') }]);
      const src = await reg.pushImage('src/pushprep', 'v1', [layer]);
      assert.equal((await dk(d, ['pull', `${reg.host}/src/pushprep:v1`])).code, 0);
      const name = `${proxy.host}/pushprep/app`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/pushprep:v1`, `${name}:v1`])).code, 0);
      // The first question (has the registry the config blob?) is answered 1.5 s late; the image is removed meanwhile.
      const first = (e: { method: string; url: string }) => e.method === 'HEAD' && e.url.includes('/pushprep/app/blobs/');
      proxy.addFault({ method: 'HEAD', match: (req) => first({ method: 'HEAD', url: req.url ?? '' }), fault: { kind: 'delay', ms: 1500 }, times: 1 });
      let text = '';
      const pushing = apiStream(d, 'POST', `/images/${encodeURIComponent(name)}/push?tag=v1`, { 'x-registry-auth': Buffer.from('{}').toString('base64url') }, (c) => (text += c.toString()));
      for (let i = 0; i < 100 && !proxy.log.some(first); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(proxy.log.some(first), 'the push asked the registry');
      const r = await apiCall(d, 'DELETE', `/images/${encodeURIComponent(src.imageId)}?force=1`);
      assert.equal(r.status, 200, r.body);
      const status = await pushing;
      proxy.clearFaults();
      assert.equal(status, 200);
      assert.doesNotMatch(text, /"error"/, text);
      assert.match(text, /v1: digest: sha256:[0-9a-f]{64}/);
      assert.equal(layerRecorded(d, layer.diffId), false, 'the held layer went once the push ended');
      await pullBack(`${name}:v1`, { id: src.imageId, diffIds: [layer.diffId] });
    });

    test('push to an htpasswd registry: refused without credentials, works after docker login', async () => {
      const secure = await startRegistry({ htpasswd: { username: 'pushuser', password: 'pa55word' } });
      try {
        const name = `${secure.host}/auth/app:v1`;
        assert.equal((await dk(d, ['tag', `${reg.host}/src/app:v1`, name])).code, 0);
        const anon = await dk(d, ['push', name]);
        assert.equal(anon.code, 1, anon.stdout + anon.stderr);
        assert.match(anon.stderr, /Error response from daemon: .*no basic auth credentials/);
        const login = await dk(d, ['login', secure.host, '-u', 'pushuser', '--password-stdin'], { input: 'pa55word\n' });
        assert.equal(login.code, 0, login.stdout + login.stderr);
        const p = await dk(d, ['push', name]);
        assert.equal(p.code, 0, p.stdout + p.stderr);
        assert.match(p.stdout, /Pushed/);
        digestLine(p.stdout, 'v1');
        await pullBack(name, { id: img.imageId, diffIds: [base.diffId, app.diffId] });
      } finally {
        await secure.stop();
      }
    });

    test('push through a Bearer token server asks for pull,push and, to mount, the source repository', async () => {
      const ts = await startTokenServer({ service: 'push-registry' });
      const tproxy = await startFaultProxy(reg.url, { tokenServer: ts });
      try {
        const first = `${tproxy.host}/bearer/app:v1`;
        assert.equal((await dk(d, ['tag', 'oci/loaded:v2', first])).code, 0);
        const p = await dk(d, ['push', first]);
        assert.equal(p.code, 0, p.stdout + p.stderr);
        assert.match(p.stdout, /Pushed/);
        assert.ok(ts.requests.some((q) => q.scopes.includes('repository:bearer/app:pull,push')), JSON.stringify(ts.requests.map((q) => q.scopes)));
        const second = `${tproxy.host}/bearer/copy:v1`;
        assert.equal((await dk(d, ['tag', first, second])).code, 0);
        const p2 = await dk(d, ['push', second]);
        assert.equal(p2.code, 0, p2.stdout + p2.stderr);
        assert.match(p2.stdout, /Mounted from bearer\/app/);
        assert.ok(
          ts.requests.some((q) => q.scopes.includes('repository:bearer/copy:pull,push') && q.scopes.includes('repository:bearer/app:pull')),
          JSON.stringify(ts.requests.map((q) => q.scopes)),
        );
      } finally {
        await tproxy.stop();
        await ts.stop();
      }
    });

    test('docker push -a pushes every tag of the repository; docker save REPO saves every tag', async () => {
      const repo = `${reg.host}/alltags/app`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/app:v1`, `${repo}:one`])).code, 0);
      assert.equal((await dk(d, ['tag', 'oci/loaded:v2', `${repo}:two`])).code, 0);
      const p = await dk(d, ['push', '-a', repo]);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.equal((p.stdout.match(/The push refers to repository/g) ?? []).length, 1);
      digestLine(p.stdout, 'one');
      digestLine(p.stdout, 'two');
      const tags = (await (await fetch(`http://${reg.host}/v2/alltags/app/tags/list`)).json()) as { tags: string[] };
      assert.deepEqual(tags.tags.sort(), ['one', 'two']);
      const file = join(work, 'alltags.tar');
      const s = await dk(d, ['save', '-o', file, repo]);
      assert.equal(s.code, 0, s.stderr);
      const manifest = JSON.parse(runSync('tar', ['-xOf', file, 'manifest.json']).stdout) as Array<{ RepoTags: string[] }>;
      assert.deepEqual(manifest.flatMap((m) => m.RepoTags).sort(), [`${repo}:one`, `${repo}:two`]);
    });

    test('errors: an unknown tag is 404 before any output; skiff push works', async () => {
      const missing = await dk(d, ['push', `${reg.host}/nothing/here:v9`]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, new RegExp(`Error response from daemon: An image does not exist locally with the tag: ${esc(reg.host)}/nothing/here\n`));
      const noTag = await dk(d, ['push', `${reg.host}/src/app:nope`]);
      assert.equal(noTag.code, 1);
      assert.match(noTag.stderr, new RegExp(`Error response from daemon: tag does not exist: ${esc(reg.host)}/src/app:nope`));
      const name = `${reg.host}/cli/app:v1`;
      assert.equal((await dk(d, ['tag', `${reg.host}/src/app:v1`, name])).code, 0);
      const since = Math.floor(Date.now() / 1000) - 1;
      const p = await run(SKIFF, ['-H', d.host, 'push', name]);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.match(p.stdout, /Mounted from src\/app/);
      assert.match(p.stdout, /v1: digest: sha256:[0-9a-f]{64} size: \d+/);
      const file = join(work, 'events.tar');
      assert.equal((await dk(d, ['save', '-o', file, name])).code, 0);
      assert.equal((await dk(d, ['load', '-i', file])).code, 0);
      const ev = await dk(d, ['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.ID}}']);
      assert.equal(ev.code, 0, ev.stderr);
      const lines = ev.stdout.trim().split('\n');
      assert.ok(lines.includes(`push ${reg.host}/cli/app:v1`), ev.stdout);
      assert.ok(lines.includes(`save ${img.imageId}`), ev.stdout);
      assert.ok(lines.includes(`load ${img.imageId}`), ev.stdout);
    });
  });
});

function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm' ? 'arm' : process.arch;
}
