// Volumes through the real docker CLI: docker volume create/ls/inspect/rm/prune,
// named volumes created on demand, anonymous ones (-v /path, image VOLUME,
// --mount without source) and their removal with rm -v and --rm, seeding
// from the image, in-use conflicts, bind mounts, bind-style local volumes,
// system df and recovery after a restart.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, parseResponse, rawRequest, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { busyboxEntries } from '../helpers/debian.js';
import { makeLayer, startRegistry, type TestRegistry } from '../helpers/registry.js';

const BUSYBOX = '/bin/busybox';
const HEX64 = /^[0-9a-f]{64}$/;

describe('volumes', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  const dir = tempDir('skiff-volumes-');
  const hostSecret = join(dir, 'host-secret');

  const dk = (...args: string[]) => docker(d.host, args);
  const ok = async (...args: string[]) => {
    const r = await docker(d.host, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const volumeNames = async (...filters: string[]) =>
    (await ok('volume', 'ls', '-q', ...filters.flatMap((f) => ['-f', f]))).trim().split('\n').filter(Boolean).sort();
  const inspect = async (ref: string) => JSON.parse(await ok('inspect', ref))[0];

  before(async () => {
    reg = await startRegistry();
    const entries = busyboxEntries(readFileSync(BUSYBOX));
    entries.push({ name: 'bin/cat', type: 'symlink', linkname: 'busybox' });
    const base = await makeLayer(entries);
    await reg.pushImage('test/busybox', 'latest', [base], { os: 'linux', architecture: 'amd64' }, { config: { cmd: ['sh'] } });
    // An image with a VOLUME over content that is not root's.
    const extra = await makeLayer([
      { name: 'srv/', type: 'directory' },
      { name: 'srv/data/', type: 'directory', mode: 0o750, uid: 1234, gid: 5678 },
      { name: 'srv/data/owned', data: 'seeded\n', mode: 0o640, uid: 1234, gid: 5678 },
      { name: 'srv/data/link', type: 'symlink', linkname: 'owned', uid: 1234, gid: 5678 },
      { name: 'srv/data/sub/', type: 'directory', mode: 0o1777 },
      { name: 'srv/data/sub/setuid', data: 'x', mode: 0o4755 },
    ]);
    await reg.pushImage('test/volimg', 'latest', [base, extra], { os: 'linux', architecture: 'amd64' }, { config: { cmd: ['sh'], volumes: ['/srv/data'] } });
    // A hostile image: its volume path is a symlink that climbs past the root through a missing directory.
    mkdirSync(hostSecret, { recursive: true });
    writeFileSync(join(hostSecret, 'secret'), 'HOST ONLY\n');
    const climb = await makeLayer([
      { name: 'srv/', type: 'directory' },
      { name: 'srv/escape', type: 'symlink', linkname: `nothere/${'../'.repeat(40)}${hostSecret.slice(1)}` },
    ]);
    await reg.pushImage('test/climb', 'latest', [base, climb], { os: 'linux', architecture: 'amd64' }, { config: { cmd: ['sh'] } });
    d = await startDaemon({ dir });
    for (const [repo, local] of [['test/busybox', 'busybox'], ['test/volimg', 'volimg'], ['test/climb', 'climb']] as const) {
      await ok('pull', `${reg.host}/${repo}`);
      await ok('tag', `${reg.host}/${repo}`, local);
    }
  });
  after(async () => {
    if (d) {
      const ids = (await dk('ps', '-aq')).stdout.trim().split('\n').filter(Boolean);
      if (ids.length) await dk('rm', '-f', ...ids);
      d.cleanup();
    }
    await reg?.stop();
  });

  test('volume create, ls, inspect, rm', async () => {
    const out = await ok('volume', 'create', '--label', 'owner=tests', 'v1');
    assert.equal(out.trim(), 'v1');
    const [v] = JSON.parse(await ok('volume', 'inspect', 'v1'));
    assert.equal(v.Name, 'v1');
    assert.equal(v.Driver, 'local');
    assert.equal(v.Scope, 'local');
    assert.equal(v.Mountpoint, join(d.dataRoot, 'volumes', 'v1', '_data'));
    assert.deepEqual(v.Labels, { owner: 'tests' });
    assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
    assert.ok(statSync(v.Mountpoint).isDirectory());
    // A second create of the same name answers the existing volume.
    assert.equal((await ok('volume', 'create', 'v1')).trim(), 'v1');
    assert.deepEqual(JSON.parse(await ok('volume', 'inspect', 'v1'))[0], v);
    // No name: a random 64-hex one.
    const anon = (await ok('volume', 'create')).trim();
    assert.match(anon, HEX64);
    assert.ok((await volumeNames()).includes('v1'));
    assert.ok((await volumeNames()).includes(anon));
    assert.match(await ok('volume', 'ls'), /^local\s+v1$/m);
    await ok('volume', 'rm', 'v1', anon);
    assert.ok(!(await volumeNames()).includes('v1'));
    assert.ok(!existsSync(join(d.dataRoot, 'volumes', 'v1')));
    const missing = await dk('volume', 'rm', 'v1');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /get v1: no such volume/);
    assert.equal((await dk('volume', 'rm', '-f', 'v1')).code, 0);
    const ins = await dk('volume', 'inspect', 'nonex');
    assert.equal(ins.code, 1);
    assert.match(ins.stderr, /no such volume/);
  });

  test('the API: status codes dockerode accepts, error shapes, events', async () => {
    const req = async (method: string, path: string, body?: unknown) => {
      const data = body === undefined ? '' : JSON.stringify(body);
      const head = `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` + (body === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n`);
      return parseResponse(await rawRequest(d.socket, `${head}\r\n${data}`));
    };
    const since = Math.floor(Date.now() / 1000) - 1;
    // dockerode sends the options in the query and the body.
    const created = await req('POST', '/volumes/create?Name=apiv', { Name: 'apiv', Labels: { a: 'b' } });
    assert.equal(created.status, 201);
    assert.equal(JSON.parse(created.body).Name, 'apiv');
    const list = await req('GET', '/v1.41/volumes?filters=' + encodeURIComponent(JSON.stringify({ label: { 'a=b': true } })));
    assert.equal(list.status, 200);
    assert.deepEqual(JSON.parse(list.body).Volumes.map((v: { Name: string }) => v.Name), ['apiv']);
    assert.equal(JSON.parse(list.body).Warnings, null);
    const missing = await req('GET', '/volumes/nonex');
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.body), { message: 'get nonex: no such volume' });
    assert.equal((await req('DELETE', '/volumes/apiv')).status, 204);
    assert.equal((await req('DELETE', '/volumes/apiv')).status, 404);
    assert.equal((await req('DELETE', '/volumes/apiv?force=1')).status, 204);
    const prune = await req('POST', '/volumes/prune');
    assert.equal(prune.status, 200);
    assert.deepEqual(JSON.parse(prune.body), { VolumesDeleted: null, SpaceReclaimed: 0 });
    const ev = await ok('events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '-f', 'type=volume', '--format', '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}');
    assert.deepEqual(ev.trim().split('\n').filter((l) => l.includes(' apiv ')), ['create apiv local', 'destroy apiv local']);
  });

  test('invalid names, drivers and options are refused clearly', async () => {
    const badName = await dk('volume', 'create', 'a/b');
    assert.notEqual(badName.code, 0);
    assert.match(badName.stderr, /includes invalid characters for a local volume name/);
    const badDriver = await dk('volume', 'create', '-d', 'nfsplugin', 'x1');
    assert.notEqual(badDriver.code, 0);
    assert.match(badDriver.stderr, /plugin "nfsplugin" not found/);
    const badOpt = await dk('volume', 'create', '--opt', 'colour=red', 'x2');
    assert.match(badOpt.stderr, /invalid option: "colour"/);
    const tmpfs = await dk('volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', 'x3');
    assert.notEqual(tmpfs.code, 0);
    assert.match(tmpfs.stderr, /type=tmpfs is not supported/);
    assert.deepEqual((await volumeNames()).filter((n) => /^x\d$/.test(n)), []);
  });

  test('a named volume is created on demand and its data outlives the container', async () => {
    await ok('run', '--rm', '-v', 'data1:/data', 'busybox', 'sh', '-c', 'echo hello > /data/f');
    assert.ok((await volumeNames()).includes('data1'));
    assert.equal(await ok('run', '--rm', '-v', 'data1:/data', 'busybox', 'cat', '/data/f'), 'hello\n');
    assert.equal(readFileSync(join(d.dataRoot, 'volumes', 'data1', '_data', 'f'), 'utf8'), 'hello\n');
    // Read-only mount of the same volume.
    const ro = await dk('run', '--rm', '-v', 'data1:/data:ro', 'busybox', 'touch', '/data/g');
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    // --mount form, with a label applied to the volume it creates.
    await ok('run', '--rm', '--mount', 'type=volume,src=mnt1,dst=/m,volume-label=made=by-mount', 'busybox', 'sh', '-c', 'echo m > /m/x');
    assert.deepEqual(JSON.parse(await ok('volume', 'inspect', 'mnt1'))[0].Labels, { made: 'by-mount' });
    await ok('volume', 'rm', 'data1', 'mnt1');
  });

  test('a new volume over an image directory is seeded from it, owners, modes and symlinks kept', async () => {
    assert.match(await ok('run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'cat', '/etc/passwd'), /^root:x:0:0:/m);
    const etc = join(d.dataRoot, 'volumes', 'etcvol', '_data');
    assert.match(readFileSync(join(etc, 'passwd'), 'utf8'), /^root:x:0:0:/m);
    // Once the volume has content, it is never seeded again.
    writeFileSync(join(etc, 'marker'), 'mine\n');
    assert.equal(await ok('run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'cat', '/etc/marker'), 'mine\n');

    // /bin is all symlinks to busybox: they stay symlinks.
    await ok('run', '--rm', '-v', 'binvol:/bin', 'busybox', 'true');
    const bin = join(d.dataRoot, 'volumes', 'binvol', '_data');
    assert.ok(lstatSync(join(bin, 'sh')).isSymbolicLink());
    assert.equal(readlinkSync(join(bin, 'sh')), 'busybox');
    assert.equal(statSync(join(bin, 'busybox')).mode & 0o7777, 0o755);

    // The image's VOLUME (anonymous) and a named volume over it: owners and modes as in the image.
    await ok('run', '--rm', '-v', 'srvvol:/srv/data', 'volimg', 'cat', '/srv/data/owned');
    const srv = join(d.dataRoot, 'volumes', 'srvvol', '_data');
    const root = statSync(srv);
    assert.deepEqual([root.uid, root.gid, root.mode & 0o7777], [1234, 5678, 0o750]);
    const owned = statSync(join(srv, 'owned'));
    assert.deepEqual([owned.uid, owned.gid, owned.mode & 0o7777], [1234, 5678, 0o640]);
    assert.equal(readlinkSync(join(srv, 'link')), 'owned');
    assert.equal(lstatSync(join(srv, 'link')).uid, 1234);
    assert.equal(statSync(join(srv, 'sub')).mode & 0o7777, 0o1777);
    assert.equal(statSync(join(srv, 'sub', 'setuid')).mode & 0o7777, 0o4755);

    // nocopy: the volume stays empty.
    const nc = await dk('run', '--rm', '-v', 'ncvol:/srv/data:nocopy', 'volimg', 'ls', '/srv/data');
    assert.equal(nc.code, 0, nc.stderr);
    assert.equal(nc.stdout, '');
    await ok('volume', 'rm', 'etcvol', 'binvol', 'srvvol', 'ncvol');
  });

  test('seeding follows symlinks inside the root only: a link climbing out through a missing directory copies nothing of the host', async () => {
    await ok('run', '--rm', '-v', 'climbvol:/srv/escape', 'climb', 'true');
    assert.deepEqual(readdirSync(join(d.dataRoot, 'volumes', 'climbvol', '_data')), []);
    assert.equal(await ok('run', '--rm', '-v', 'climbvol:/v', 'busybox', 'ls', '/v'), '');
    await ok('volume', 'rm', 'climbvol');
  });

  test('a volume in use cannot be removed (409) until its container is gone', async () => {
    const id = (await ok('run', '-d', '--name', 'holder', '-v', 'busy:/data', 'busybox', 'sleep', '100')).trim();
    const rm = await dk('volume', 'rm', 'busy');
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, new RegExp(`remove busy: volume is in use - \\[${id}\\]`));
    // As in moby, force does not override "in use".
    assert.equal((await dk('volume', 'rm', '-f', 'busy')).code, 1);
    assert.deepEqual(await volumeNames('dangling=false', 'name=busy'), ['busy']);
    await ok('rm', '-f', 'holder');
    assert.deepEqual(await volumeNames('dangling=true', 'name=busy'), ['busy']);
    await ok('volume', 'rm', 'busy');
    // A stopped (or never started) container holds its volumes too.
    const cid = (await ok('create', '-v', 'held:/data', 'busybox', 'true')).trim();
    assert.match((await dk('volume', 'rm', 'held')).stderr, /volume is in use/);
    await ok('rm', cid);
    await ok('volume', 'rm', 'held');
  });

  test('--rm removes the anonymous volumes of -v /path and of the image VOLUME', async () => {
    const before = await volumeNames();
    assert.equal(await ok('run', '--rm', '-v', '/data', 'busybox', 'sh', '-c', 'echo x > /data/x; cat /data/x'), 'x\n');
    assert.equal(await ok('run', '--rm', 'volimg', 'cat', '/srv/data/owned'), 'seeded\n');
    assert.deepEqual(await volumeNames(), before);
  });

  test('rm -v removes anonymous volumes, not named ones; rm alone leaves them dangling', async () => {
    const before = await volumeNames();
    const id = (await ok('create', '-v', '/anon', '-v', 'named2:/n', '--mount', 'type=volume,dst=/m', 'busybox', 'true')).trim();
    const mounts = (await inspect(id)).Mounts as Array<Record<string, unknown>>;
    const byDest = Object.fromEntries(mounts.map((m) => [m.Destination, m]));
    assert.equal(mounts.length, 3);
    const anonName = byDest['/anon']?.Name as string;
    assert.match(anonName, HEX64);
    assert.deepEqual(byDest['/anon'], {
      Type: 'volume', Name: anonName, Source: join(d.dataRoot, 'volumes', anonName, '_data'), Destination: '/anon', Driver: 'local', Mode: '', RW: true, Propagation: '',
    });
    assert.deepEqual(byDest['/n'], {
      Type: 'volume', Name: 'named2', Source: join(d.dataRoot, 'volumes', 'named2', '_data'), Destination: '/n', Driver: 'local', Mode: 'z', RW: true, Propagation: '',
    });
    assert.match(byDest['/m']?.Name as string, HEX64);
    // docker ps --filter volume=: by volume name or by destination.
    assert.equal((await ok('ps', '-aq', '--no-trunc', '-f', 'volume=named2')).trim(), id);
    assert.equal((await ok('ps', '-aq', '--no-trunc', '-f', 'volume=/anon')).trim(), id);
    assert.equal((await ok('ps', '-aq', '-f', 'volume=nothing')).trim(), '');
    assert.equal((await volumeNames()).length, before.length + 3);
    await ok('rm', '-v', id);
    assert.deepEqual(await volumeNames(), [...before, 'named2'].sort());

    const id2 = (await ok('create', '-v', '/anon', 'busybox', 'true')).trim();
    const anon2 = ((await inspect(id2)).Mounts[0] as { Name: string }).Name;
    await ok('rm', id2);
    assert.ok((await volumeNames('dangling=true')).includes(anon2));
    await ok('volume', 'rm', anon2, 'named2');
  });

  test('volume prune removes every unused volume (API 1.41) and keeps those in use', async () => {
    await ok('volume', 'create', 'unused1');
    const anon = (await ok('volume', 'create')).trim();
    writeFileSync(join(d.dataRoot, 'volumes', 'unused1', '_data', 'blob'), Buffer.alloc(10_000));
    await ok('create', '--name', 'keeper', '-v', 'kept:/k', 'busybox', 'true');
    const out = await ok('volume', 'prune', '-f');
    assert.match(out, /Deleted Volumes:/);
    assert.match(out, /^unused1$/m);
    assert.match(out, new RegExp(`^${anon}$`, 'm'));
    assert.match(out, /Total reclaimed space: 10(\.\d+)?kB/);
    assert.deepEqual(await volumeNames(), ['kept']);
    await ok('rm', 'keeper');
    assert.match(await ok('volume', 'prune', '-f'), /^kept$/m);
    assert.deepEqual(await volumeNames(), []);
  });

  test('label, name, driver and dangling filters', async () => {
    await ok('volume', 'create', '--label', 'env=prod', '--label', 'tier=db', 'lv1');
    await ok('volume', 'create', '--label', 'env=dev', 'lv2');
    await ok('volume', 'create', 'other');
    assert.deepEqual(await volumeNames('label=env=prod'), ['lv1']);
    assert.deepEqual(await volumeNames('label=env'), ['lv1', 'lv2']);
    assert.deepEqual(await volumeNames('label=env', 'label=tier=db'), ['lv1']);
    assert.deepEqual(await volumeNames('name=lv'), ['lv1', 'lv2']);
    assert.deepEqual(await volumeNames('driver=local', 'name=other'), ['other']);
    assert.deepEqual(await volumeNames('dangling=true'), ['lv1', 'lv2', 'other']);
    const bad = await dk('volume', 'ls', '-f', 'colour=red');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid filter 'colour'/);
    // Prune honours label filters.
    assert.match(await ok('volume', 'prune', '-f', '--filter', 'label=env=dev'), /^lv2$/m);
    assert.deepEqual(await volumeNames(), ['lv1', 'other']);
    await ok('volume', 'rm', 'lv1', 'other');
  });

  test('bind mounts: read-only enforced, listed in Mounts', async () => {
    const host = join(dir, 'hostdir');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'f'), 'from host\n');
    const r = await dk('run', '--rm', '-v', `${host}:/x:ro`, 'busybox', 'sh', '-c', 'cat /x/f; touch /x/g');
    assert.equal(r.stdout, 'from host\n');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Read-only file system/);
    assert.ok(!existsSync(join(host, 'g')));
    await ok('run', '--rm', '-v', `${host}:/x`, 'busybox', 'touch', '/x/g');
    assert.ok(existsSync(join(host, 'g')));
    const id = (await ok('create', '-v', `${host}:/x:ro`, '--mount', `type=bind,src=${host},dst=/y`, 'busybox', 'true')).trim();
    const mounts = (await inspect(id)).Mounts as Array<Record<string, unknown>>;
    assert.deepEqual(mounts, [
      { Type: 'bind', Source: host, Destination: '/x', Mode: 'ro', RW: false, Propagation: 'rprivate' },
      { Type: 'bind', Source: host, Destination: '/y', Mode: '', RW: true, Propagation: 'rprivate' },
    ]);
    await ok('rm', id);
  });

  test('bind-style local volumes (type=none, o=bind, device=...) use the device; rm leaves it', async () => {
    const dev = join(dir, 'device');
    mkdirSync(dev, { recursive: true });
    writeFileSync(join(dev, 'on-device'), 'dev\n');
    await ok('volume', 'create', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${dev}`, 'bv');
    assert.deepEqual(JSON.parse(await ok('volume', 'inspect', 'bv'))[0].Options, { type: 'none', o: 'bind', device: dev });
    assert.equal(await ok('run', '--rm', '-v', 'bv:/b', 'busybox', 'sh', '-c', 'cat /b/on-device; echo new > /b/new'), 'dev\n');
    assert.equal(readFileSync(join(dev, 'new'), 'utf8'), 'new\n');
    await ok('volume', 'rm', 'bv');
    assert.ok(existsSync(join(dev, 'on-device')));
    await ok('volume', 'create', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${join(dir, 'nope')}`, 'bv2');
    const r = await dk('run', '--rm', '-v', 'bv2:/b', 'busybox', 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no such file or directory/);
    await ok('volume', 'rm', 'bv2');
  });

  test('system df lists volumes with their size and references', async () => {
    await ok('volume', 'create', 'dfvol');
    writeFileSync(join(d.dataRoot, 'volumes', 'dfvol', '_data', 'blob'), Buffer.alloc(4096));
    await ok('create', '--name', 'dfuser', '-v', 'dfvol:/d', 'busybox', 'true');
    const out = await ok('system', 'df', '-v');
    assert.match(out, /^dfvol\s+1\s+4\.096kB$/m);
    assert.match(await ok('system', 'df'), /^Local Volumes\s+1\s+1\s+4\.096kB\s+0B/m);
    await ok('rm', 'dfuser');
    await ok('volume', 'rm', 'dfvol');
  });

  test('volumes and their data survive kill -9 of the daemon; half-made ones are cleaned up', async () => {
    await ok('run', '--rm', '-v', 'durable:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f');
    // kill -9: what a power cut leaves is what recovery sees.
    await d.stop('SIGKILL');
    const vdir = join(d.dataRoot, 'volumes');
    mkdirSync(join(vdir, '.creating-half-0123456789ab', '_data'), { recursive: true });
    mkdirSync(join(vdir, '.removing-gone-0123456789ab', '_data'), { recursive: true });
    // A volume directory without skiff's record (made by hand): adopted, never deleted.
    mkdirSync(join(vdir, 'handmade', '_data'), { recursive: true });
    writeFileSync(join(vdir, 'handmade', '_data', 'f'), 'by hand\n');
    d = await startDaemon({ dir });
    assert.deepEqual(readdirSync(vdir).filter((n) => n.startsWith('.')), []);
    assert.deepEqual(await volumeNames(), ['durable', 'handmade']);
    assert.equal(await ok('run', '--rm', '-v', 'handmade:/h', 'busybox', 'cat', '/h/f'), 'by hand\n');
    await ok('volume', 'rm', 'handmade');
    assert.equal(await ok('run', '--rm', '-v', 'durable:/data', 'busybox', 'cat', '/data/f'), 'kept\n');
    await ok('volume', 'rm', 'durable');
  });
});
