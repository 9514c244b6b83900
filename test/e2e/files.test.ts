// A container's files through the real docker CLI: docker cp both ways (running
// and stopped containers, volumes, symlinks that try to leave the root, errors),
// docker export and docker diff.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, parseResponse, rawRequest, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { startBusyboxDaemon, stopBusyboxDaemon } from '../helpers/busybox.js';
import type { TestRegistry } from '../helpers/registry.js';

describe('docker cp, export, diff', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  const dir = tempDir('skiff-files-');
  const work = join(dir, 'work');

  const ok = async (...args: string[]) => {
    const r = await docker(d.host, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** A docker command piped into another program (bytes kept). */
  const piped = (dockerArgs: string, cmd: string) => {
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', `docker -H ${d.host} ${dockerArgs} | ${cmd}`], { encoding: 'utf8', cwd: work, env: { ...process.env, DOCKER_CONFIG: join(tmpdir(), 'skiff-test-docker-config') } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    mkdirSync(work, { recursive: true });
    ({ d, reg } = await startBusyboxDaemon({ dir }));
    await ok('run', '-d', '--name', 'box', '--hostname', 'boxhost', '-v', 'cpvol:/vol', 'busybox', 'sleep', '1000');
  });
  after(() => stopBusyboxDaemon(d, reg));

  test('cp out: a file to stdout as a tar, with the path stat header', async () => {
    const r = piped('cp box:/etc/hostname -', 'tar -tvf -');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, / hostname\n$/);
    // /etc/hostname is the container's own (a network file over the root), as in Docker.
    const content = piped('cp box:/etc/hostname -', 'tar -xOf -');
    assert.equal(content.stdout, 'boxhost\n');
    const head = parseResponse(await rawRequest(d.socket, 'HEAD /containers/box/archive?path=/bin/busybox HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(head.status, 200);
    const stat = JSON.parse(Buffer.from(head.headers['x-docker-container-path-stat'] ?? '', 'base64').toString());
    assert.deepEqual(Object.keys(stat), ['name', 'size', 'mode', 'mtime', 'linkTarget']);
    assert.equal(stat.name, 'busybox');
    assert.equal(stat.size, statSync('/bin/busybox').size);
    assert.equal(stat.mode, 0o755);
    assert.match(stat.mtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const dirStat = parseResponse(await rawRequest(d.socket, 'HEAD /containers/box/archive?path=/bin/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    const ds = JSON.parse(Buffer.from(dirStat.headers['x-docker-container-path-stat'] ?? '', 'base64').toString());
    // Go's os.ModeDir is 1<<31.
    assert.equal(ds.mode, 2 ** 31 + 0o755);
    assert.equal(ds.name, 'bin');
    const link = parseResponse(await rawRequest(d.socket, 'HEAD /containers/box/archive?path=/bin/sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    const ls = JSON.parse(Buffer.from(link.headers['x-docker-container-path-stat'] ?? '', 'base64').toString());
    assert.equal(ls.mode, 2 ** 27 + 0o777);
    assert.equal(ls.linkTarget, '/bin/busybox');
  });

  test('cp out: a directory with a symlink, a hard link and modes', async () => {
    await ok('exec', 'box', 'sh', '-c', 'mkdir -p /data/sub && echo one > /data/one && chmod 640 /data/one && ln /data/one /data/hard && ln -s one /data/link && echo deep > /data/sub/deep && chown 12:34 /data/sub/deep');
    rmSync(join(work, 'out'), { recursive: true, force: true });
    const r = await docker(d.host, ['cp', 'box:/data', join(work, 'out')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(work, 'out', 'one'), 'utf8'), 'one\n');
    assert.equal(statSync(join(work, 'out', 'one')).mode & 0o777, 0o640);
    assert.equal(statSync(join(work, 'out', 'hard')).ino, statSync(join(work, 'out', 'one')).ino, 'hard link kept');
    assert.equal(readlinkSync(join(work, 'out', 'link')), 'one');
    assert.equal(readFileSync(join(work, 'out', 'sub', 'deep'), 'utf8'), 'deep\n');
    const names = piped('cp box:/data -', 'tar -tf -').stdout.trim().split('\n');
    assert.deepEqual(names, ['data/', 'data/hard', 'data/link', 'data/one', 'data/sub/', 'data/sub/deep']);
    const owners = piped('cp box:/data/sub -', 'tar -tvf - --numeric-owner').stdout;
    assert.match(owners, /12\/34 .* sub\/deep/);
  });

  test('cp out of the root directory, -L through a link, cp in from a tar on stdin', async () => {
    await ok('create', '--name', 'tiny', 'busybox', 'true');
    rmSync(join(work, 'rootcopy'), { recursive: true, force: true });
    await ok('cp', 'tiny:/', join(work, 'rootcopy'));
    assert.ok(statSync(join(work, 'rootcopy', 'bin', 'busybox')).isFile());
    assert.equal(readlinkSync(join(work, 'rootcopy', 'bin', 'sh')), 'busybox');
    rmSync(join(work, 'followed'), { force: true });
    await ok('cp', '-L', 'tiny:/bin/sh', join(work, 'followed'));
    assert.ok(lstatSync(join(work, 'followed')).isFile(), '-L copies what the link points to');
    const viaStdin = spawnSync('bash', ['-o', 'pipefail', '-c', `printf 'piped\n' > ${work}/p.txt && tar -cf - -C ${work} p.txt | docker -H ${d.host} cp - tiny:/tmp`], { encoding: 'utf8', env: { ...process.env, DOCKER_CONFIG: join(tmpdir(), 'skiff-test-docker-config') } });
    assert.equal(viaStdin.status, 0, viaStdin.stderr);
    assert.equal(piped('cp tiny:/tmp/p.txt -', 'tar -xOf -').stdout, 'piped\n');
  });

  test('cp in: a file into /tmp/, a directory, and over a file', async () => {
    writeFileSync(join(work, 'file.txt'), 'from the host\n');
    await ok('cp', join(work, 'file.txt'), 'box:/tmp/');
    assert.equal(await ok('exec', 'box', 'cat', '/tmp/file.txt'), 'from the host\n');
    mkdirSync(join(work, 'tree', 'a'), { recursive: true });
    writeFileSync(join(work, 'tree', 'a', 'b'), 'b\n');
    await ok('cp', join(work, 'tree'), 'box:/opt');
    assert.equal(await ok('exec', 'box', 'cat', '/opt/a/b'), 'b\n');
    writeFileSync(join(work, 'file.txt'), 'second\n');
    await ok('cp', join(work, 'file.txt'), 'box:/tmp/file.txt');
    assert.equal(await ok('exec', 'box', 'cat', '/tmp/file.txt'), 'second\n');
  });

  test('cp into and out of a volume reads and writes the volume', async () => {
    writeFileSync(join(work, 'v.txt'), 'in the volume\n');
    await ok('cp', join(work, 'v.txt'), 'box:/vol/');
    const [v] = JSON.parse(await ok('volume', 'inspect', 'cpvol'));
    assert.equal(readFileSync(join(v.Mountpoint, 'v.txt'), 'utf8'), 'in the volume\n');
    writeFileSync(join(v.Mountpoint, 'h.txt'), 'from the host side\n');
    assert.equal(piped('cp box:/vol/h.txt -', 'tar -xOf -').stdout, 'from the host side\n');
  });

  test('a stopped (never started) container: cp both ways, then it starts with the file', async () => {
    await ok('create', '--name', 'cold', '-v', 'coldvol:/cv', 'busybox', 'cat', '/etc/greeting', '/cv/x');
    writeFileSync(join(work, 'greeting'), 'hello cold\n');
    await ok('cp', join(work, 'greeting'), 'cold:/etc/');
    writeFileSync(join(work, 'x'), 'volume x\n');
    await ok('cp', join(work, 'x'), 'cold:/cv/');
    assert.equal(piped('cp cold:/etc/greeting -', 'tar -xOf -').stdout, 'hello cold\n');
    assert.equal(piped('cp cold:/cv/x -', 'tar -xOf -').stdout, 'volume x\n');
    const root = JSON.parse(await ok('inspect', 'cold'))[0].GraphDriver.Data.MergedDir;
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${root} `), 'the root is unmounted again');
    await ok('start', 'cold');
    assert.equal((await ok('wait', 'cold')).trim(), '0');
    assert.equal(await ok('logs', 'cold'), 'hello cold\nvolume x\n');
    // Exited now: still readable.
    assert.equal(piped('cp cold:/etc/greeting -', 'tar -xOf -').stdout, 'hello cold\n');
  });

  test('a client that drops a copy of a stopped container does not block its start', async () => {
    await ok('create', '--name', 'dropped', 'busybox', 'echo', 'started');
    for (const path of ['/bin', '/']) {
      await new Promise<void>((resolve, reject) => {
        const sock = connect(d.socket, () => sock.write(`GET /containers/dropped/archive?path=${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
        sock.once('data', () => {
          sock.destroy();
          resolve();
        });
        sock.once('error', reject);
      });
    }
    const exp = connect(d.socket, () => exp.end('GET /containers/dropped/export HTTP/1.1\r\nHost: x\r\n\r\n'));
    exp.on('data', () => exp.destroy());
    await ok('start', 'dropped');
    assert.equal((await ok('wait', 'dropped')).trim(), '0');
    assert.equal(await ok('logs', 'dropped'), 'started\n');
  });

  test('symlinks never lead out of the root, in either direction', async () => {
    const marker = `skiff-escape-${process.pid}-${Date.now()}`;
    writeFileSync(join('/tmp', marker), 'HOST SECRET\n');
    try {
      await ok('exec', 'box', 'sh', '-c', `ln -s / /evil && ln -s ../../../../../.. /evil2 && mkdir -p /jail && ln -s /tmp/${marker} /jail/link && echo inside > /tmp/${marker}-c`);
      const out = piped(`cp box:/evil/tmp/${marker} -`, 'tar -xOf -');
      assert.notEqual(out.stdout, 'HOST SECRET\n');
      const missing = await docker(d.host, ['cp', `box:/evil2/tmp/${marker}`, join(work, 'leak')]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, new RegExp(`Could not find the file /evil2/tmp/${marker} in container box`));
      assert.ok(!existsSync(join(work, 'leak')));
      // Through /evil2 the container's /tmp is reached, not the host's.
      assert.equal(piped(`cp box:/evil2/tmp/${marker}-c -`, 'tar -xOf -').stdout, 'inside\n');
      // A copy of the link itself is the link (-L follows it, inside the container).
      const lk = piped('cp box:/jail/link -', 'tar -tvf -');
      assert.match(lk.stdout, /link -> \/tmp\//);
      // Writing through a hostile link lands inside the container.
      writeFileSync(join(work, 'planted'), 'planted\n');
      await ok('cp', join(work, 'planted'), 'box:/evil2/tmp/');
      assert.ok(!existsSync('/tmp/planted') || readFileSync('/tmp/planted', 'utf8') !== 'planted\n', 'nothing planted on the host');
      assert.equal(await ok('exec', 'box', 'cat', '/tmp/planted'), 'planted\n');
      // A tar whose entries climb out is refused.
      mkdirSync(join(work, 'climb'), { recursive: true });
      writeFileSync(join(work, 'climb', 'f'), 'x');
      const tar = spawnSync('tar', ['-cf', '-', '--transform', 's,^,../../../../../tmp/,', '-C', join(work, 'climb'), 'f']).stdout;
      const put = parseResponse(
        await rawRequest(d.socket, Buffer.concat([Buffer.from(`PUT /containers/box/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: ${tar.length}\r\n\r\n`), tar])),
      );
      assert.equal(put.status, 500, put.body);
      assert.ok(!existsSync('/tmp/f') || lstatSync('/tmp/f').size !== 1 || readFileSync('/tmp/f', 'utf8') !== 'x');
    } finally {
      rmSync(join('/tmp', marker), { force: true });
      rmSync(join('/tmp', `${marker}-c`), { force: true });
    }
  });

  test("errors: a missing path, an empty path, a read-only root, a missing container", async () => {
    const miss = await docker(d.host, ['cp', 'box:/no/such', '-']);
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /Could not find the file \/no\/such in container box/);
    const empty = parseResponse(await rawRequest(d.socket, 'GET /containers/box/archive?path= HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(empty.status, 400);
    assert.equal(JSON.parse(empty.body).message, 'bad parameter: pathcannot be empty');
    const nf = parseResponse(await rawRequest(d.socket, 'GET /containers/box/archive?path=/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(nf.status, 404);
    assert.equal(JSON.parse(nf.body).message, 'Could not find the file /nope in container box');
    const nc = await docker(d.host, ['cp', 'nosuchbox:/etc/hostname', '-']);
    assert.match(nc.stderr, /No such container/);
    await ok('run', '-d', '--name', 'ro', '--read-only', '-v', 'rovol:/data', 'busybox', 'sleep', '1000');
    writeFileSync(join(work, 'ro.txt'), 'x\n');
    const ro = await docker(d.host, ['cp', join(work, 'ro.txt'), 'ro:/tmp/']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /container rootfs is marked read-only/);
    // A volume of a read-only container is writable.
    await ok('cp', join(work, 'ro.txt'), 'ro:/data/');
    assert.equal(await ok('exec', 'ro', 'cat', '/data/ro.txt'), 'x\n');
    // A read-only volume is not.
    await ok('run', '-d', '--name', 'rovol', '-v', 'rodata:/rodata:ro', 'busybox', 'sleep', '1000');
    const rv = await docker(d.host, ['cp', join(work, 'ro.txt'), 'rovol:/rodata/']);
    assert.notEqual(rv.code, 0);
    assert.match(rv.stderr, /mounted volume is marked read-only/);
  });

  test('cp -a: the container user owns what is copied in; without it, the archive owner', async () => {
    await ok('run', '-d', '--name', 'usr', '--user', 'nobody', 'busybox', 'sleep', '1000');
    writeFileSync(join(work, 'owned.txt'), 'x\n');
    await ok('cp', '-a', join(work, 'owned.txt'), 'usr:/tmp/');
    assert.match(await ok('exec', 'usr', 'ls', '-ln', '/tmp/owned.txt'), /^\S+\s+\d+\s+65534\s+65534\s/);
    await ok('cp', join(work, 'owned.txt'), 'usr:/tmp/plain.txt');
    assert.match(await ok('exec', 'usr', 'ls', '-ln', '/tmp/plain.txt'), new RegExp(`^\\S+\\s+\\d+\\s+${process.getuid?.() ?? 0}\\s+`));
  });

  test('docker export: the whole root, relative names, no host files behind the network files', async () => {
    await ok('exec', 'box', 'sh', '-c', 'echo exported > /exported');
    const r = piped('export box', 'tar -tf -');
    assert.equal(r.code, 0, r.stderr);
    const names = r.stdout.trim().split('\n');
    assert.ok(names.includes('bin/busybox'), names.slice(0, 5).join(','));
    assert.ok(names.includes('exported'));
    assert.ok(names.includes('bin/'));
    assert.ok(!names.some((n) => n.startsWith('/') || n.startsWith('./')));
    assert.ok(!names.some((n) => n.startsWith('vol/') && n !== 'vol/'), 'volumes are not exported');
    assert.equal(piped('export box', 'tar -xOf - exported').stdout, 'exported\n');
    if (names.includes('etc/hostname')) assert.equal(piped('export box', 'tar -xOf - etc/hostname').stdout, '', 'the mount point, not the container hostname file');
    // A stopped container exports too.
    assert.ok(piped('export cold', 'tar -tf -').stdout.split('\n').includes('etc/greeting'));
  });

  test('docker diff: added, changed, deleted; nothing for a fresh container', async () => {
    await ok('run', '-d', '--name', 'fresh', 'busybox', 'sleep', '1000');
    assert.equal(await ok('diff', 'fresh'), '');
    const raw = parseResponse(await rawRequest(d.socket, 'GET /containers/fresh/changes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(raw.status, 200);
    assert.equal(raw.body.trim(), 'null');
    await ok('exec', 'fresh', 'sh', '-c', 'mkdir -p /newdir && echo x > /newdir/f && rm /bin/vi && echo >> /bin/busybox.txt');
    const out = (await ok('diff', 'fresh')).trim().split('\n');
    assert.deepEqual(out, ['C /bin', 'A /bin/busybox.txt', 'D /bin/vi', 'A /newdir', 'A /newdir/f']);
    // Stopped: the same changes, read from the layers without mounting anything.
    await ok('stop', '-t', '0', 'fresh');
    assert.deepEqual((await ok('diff', 'fresh')).trim().split('\n'), out);
    const id = (await ok('inspect', '-f', '{{.Id}}', 'fresh')).trim();
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(id), 'no mount of the stopped container');
  });
});
