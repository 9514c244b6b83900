// Pulling from a real registry (Debian's docker-registry on 127.0.0.1) into
// the built daemon, driven by the real docker CLI and skiff's own client;
// faults injected by a proxy in front of the registry.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, run, SKIFF, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faultproxy.js';
import { makeLayer, pseudoRandom, startRegistry, type Layer, type PushedImage, type TestRegistry } from '../helpers/registry.js';

const busybox = existsSync('/bin/busybox') ? readFileSync('/bin/busybox') : pseudoRandom(900_000);

describe('images from a real registry', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let d: TestDaemon;
  let base: Layer;
  let app: Layer;
  let img: PushedImage;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    base = await makeLayer([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/busybox', data: busybox, mode: 0o755 },
      { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' },
      { name: 'etc/old.conf', data: 'old' },
      { name: 'var/', type: 'directory' },
      { name: 'var/cache/', type: 'directory' },
      { name: 'var/cache/junk', data: 'junk' },
    ]);
    app = await makeLayer([
      { name: 'etc/.wh.old.conf' },
      { name: 'var/cache/.wh..wh..opq' },
      { name: 'app/', type: 'directory' },
      { name: 'app/data.bin', data: pseudoRandom(2_500_000, 'app') },
      { name: 'app/run', type: 'symlink', linkname: '/bin/sh' },
    ]);
    img = await reg.pushImage('test/app', 'v1', [base, app]);
    d = await startDaemon({ args: ['--max-download-attempts', '4'] });
  });
  after(async () => {
    d?.cleanup();
    await proxy?.stop();
    await reg?.stop();
  });

  test('docker pull, images, inspect show Docker-consistent IDs, digests and sizes', async () => {
    const name = `${reg.host}/test/app:v1`;
    const p = await docker(d.host, ['pull', name], 120_000);
    assert.equal(p.code, 0, p.stderr + p.stdout);
    assert.match(p.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
    assert.match(p.stdout, /Status: Downloaded newer image for/);
    assert.match(p.stdout, new RegExp(`${base.digest.slice(7, 19)}: Pull complete`));

    const again = await docker(d.host, ['pull', name]);
    assert.match(again.stdout, /Already exists|Image is up to date/);
    assert.match(again.stdout, /Status: Image is up to date for/);

    const ls = await docker(d.host, ['images', '--digests', '--format', '{{.Repository}} {{.Tag}} {{.ID}} {{.Digest}}']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), `${reg.host}/test/app v1 ${img.imageId.slice(7, 19)} ${img.manifestDigest}`);

    const ins = JSON.parse((await docker(d.host, ['image', 'inspect', name])).stdout)[0];
    assert.equal(ins.Id, img.imageId);
    assert.deepEqual(ins.RootFS.Layers, [base.diffId, app.diffId]);
    assert.deepEqual(ins.RepoDigests, [`${reg.host}/test/app@${img.manifestDigest}`]);
    assert.equal(ins.Architecture, 'amd64');
    assert.equal(ins.Size, busybox.length + 30 + 3 + 4 + 2_500_000 + '/bin/sh'.length);

    const check = await run(SKIFF, ['-H', d.host, 'check']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /2 layers checked, 0 broken/);
  });

  test('overlay2 form on disk: whiteouts, opaque dirs', async () => {
    const ins = JSON.parse((await docker(d.host, ['image', 'inspect', `${reg.host}/test/app:v1`])).stdout)[0];
    const upper = ins.GraphDriver.Data.UpperDir as string;
    const { lstatSync } = await import('node:fs');
    const wh = lstatSync(join(upper, 'etc/old.conf'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
    const { spawnSync } = await import('node:child_process');
    assert.equal(spawnSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(upper, 'var/cache')], { encoding: 'utf8' }).stdout, 'y');
  });

  test('tag and rmi: untag first, delete with the last reference', async () => {
    const name = `${reg.host}/test/app:v1`;
    assert.equal((await docker(d.host, ['tag', name, 'mine/app:stable'])).code, 0);
    const both = await docker(d.host, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.deepEqual(both.stdout.trim().split('\n').sort(), [`${reg.host}/test/app:v1`, 'mine/app:stable'].sort());
    const byId = await docker(d.host, ['rmi', img.imageId.slice(7, 19)]);
    assert.equal(byId.code, 1);
    assert.match(byId.stderr, /must be forced\) - image is referenced in multiple repositories/);
    const untag = await docker(d.host, ['rmi', 'mine/app:stable']);
    assert.equal(untag.code, 0, untag.stderr);
    assert.equal(untag.stdout.trim(), 'Untagged: mine/app:stable');
    const del = await docker(d.host, ['rmi', name]);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, new RegExp(`Untagged: ${name}`));
    assert.match(del.stdout, new RegExp(`Deleted: ${img.imageId}`));
    assert.equal((await docker(d.host, ['images', '-q'])).stdout.trim(), '');
    assert.deepEqual(readdirSync(join(d.dataRoot, 'overlay2')).filter((n) => n !== 'l'), []);
    const missing = await docker(d.host, ['rmi', 'nope:latest']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such image: nope:latest/);
  });

  test('errors before the stream are real statuses', async () => {
    const r = await docker(d.host, ['pull', `${reg.host}/test/app:nope`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /manifest unknown|not found/);
    const bad = await docker(d.host, ['pull', `${reg.host}/Test/App`]);
    assert.notEqual(bad.code, 0);
  });

  test('a flipped byte fails the layer and stores nothing', async () => {
    proxy.addFault({ match: new RegExp(`/blobs/${app.digest}`), fault: { kind: 'flip', at: 1000 } });
    const r = await docker(d.host, ['pull', `${proxy.host}/test/app:v1`]);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, /verification failed|does not match|invalid|unexpected/i);
    assert.equal((await docker(d.host, ['images', '-q'])).stdout.trim(), '');
    proxy.clearFaults();
  });

  test('a connection cut mid-blob resumes with a Range request', async () => {
    proxy.addFault({ match: new RegExp(`/blobs/${app.digest}`), fault: { kind: 'cut', after: 700_000 }, times: 2 });
    const before = proxy.log.length;
    const r = await docker(d.host, ['pull', `${proxy.host}/test/app:v1`], 120_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const blobGets = proxy.log.slice(before).filter((e) => e.url.includes(app.digest) && e.method === 'GET');
    assert.equal(blobGets.length, 3);
    assert.match(String(blobGets[2]?.headers.range), /^bytes=\d+-$/);
    const check = await run(SKIFF, ['-H', d.host, 'check']);
    assert.match(check.stdout, /0 broken/);
    proxy.clearFaults();
  });

  test('docker pull -a fetches every tag of the repository', async () => {
    const one = await makeLayer([{ name: 'v', data: 'one' }]);
    const two = await makeLayer([{ name: 'v', data: 'two' }]);
    const a = await reg.pushImage('test/tags', 'one', [one]);
    const b = await reg.pushImage('test/tags', 'two', [two]);
    const r = await docker(d.host, ['pull', '-a', `${reg.host}/test/tags`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /one: Pulling from test\/tags/);
    assert.match(r.stdout, /two: Pulling from test\/tags/);
    assert.match(r.stdout, /Status: Downloaded newer image for .*test\/tags\n/);
    const ls = await docker(d.host, ['images', '--format', '{{.Tag}} {{.ID}}', `${reg.host}/test/tags`]);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), [`one ${a.imageId.slice(7, 19)}`, `two ${b.imageId.slice(7, 19)}`]);
  });

  test('multi-platform: the platform asked for is pulled', async () => {
    const arm = await makeLayer([{ name: 'arch', data: 'arm64' }]);
    const amd = await makeLayer([{ name: 'arch', data: 'amd64' }]);
    const a = await reg.pushImage('test/multi', undefined, [arm], { os: 'linux', architecture: 'arm64' });
    const b = await reg.pushImage('test/multi', undefined, [amd], { os: 'linux', architecture: 'amd64' });
    await reg.pushIndex('test/multi', 'latest', [a, b]);
    const r = await docker(d.host, ['pull', '--platform', 'linux/arm64', `${reg.host}/test/multi`]);
    assert.equal(r.code, 0, r.stderr);
    const ins = JSON.parse((await docker(d.host, ['image', 'inspect', `${reg.host}/test/multi`])).stdout)[0];
    assert.equal(ins.Id, a.imageId);
    assert.equal(ins.Architecture, 'arm64');
    const none = await docker(d.host, ['pull', '--platform', 'linux/s390x', `${reg.host}/test/multi`]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no matching manifest for linux\/s390x/);
  });
});
