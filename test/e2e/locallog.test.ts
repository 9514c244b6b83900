// The `local` log driver through the real docker CLI: docker logs (tail,
// timestamps, stderr, since) across rotated, compressed files, logs -f,
// and option errors.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { startBusyboxDaemon, stopBusyboxDaemon } from '../helpers/busybox.js';
import type { TestRegistry } from '../helpers/registry.js';

describe('local log driver', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  const dir = tempDir('skiff-locallog-');
  const ok = async (...args: string[]) => {
    const r = await docker(d.host, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  before(async () => ({ d, reg } = await startBusyboxDaemon({ dir })));
  after(() => stopBusyboxDaemon(d, reg));

  test('rotated and compressed at max-size; docker logs reads across the files', async () => {
    const id = (
      await ok('run', '-d', '--name', 'loc', '--log-driver', 'local', '--log-opt', 'max-size=1k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; echo oops >&2')
    ).stdout.trim();
    assert.equal((await ok('wait', 'loc')).stdout.trim(), '0');
    const cdir = join(d.dataRoot, 'containers', id);
    assert.ok(!existsSync(join(cdir, `${id}-json.log`)), 'no json-file log');
    assert.equal(JSON.parse((await ok('inspect', 'loc')).stdout)[0].LogPath, '', 'moby does not show the local driver\'s files');
    let files: string[] = [];
    for (let i = 0; i < 50; i++) {
      files = readdirSync(join(cdir, 'local-logs')).sort();
      if (files.join() === 'container.log,container.log.1.gz,container.log.2.gz') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(files, ['container.log', 'container.log.1.gz', 'container.log.2.gz']);
    const logs = await ok('logs', 'loc');
    const lines = logs.stdout.trim().split('\n');
    assert.equal(lines.at(-1), 'line 299');
    const first = Number(/line (\d+)/.exec(lines[0] ?? '')?.[1]);
    assert.ok(first > 0, `the oldest lines rotated away: ${lines.slice(0, 3).join('|')} (${lines.length} lines)`);
    assert.deepEqual(lines, Array.from({ length: 300 - first }, (_, k) => `line ${first + k}`));
    assert.equal(logs.stderr, 'oops\n');
    const tail = await ok('logs', '--tail', '3', 'loc');
    assert.equal(tail.stdout, 'line 298\nline 299\n');
    assert.equal(tail.stderr, 'oops\n');
    const ts = await ok('logs', '-t', '--tail', '1', 'loc');
    assert.match(ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z oops\n$/);
    const future = String(Math.floor(Date.now() / 1000) + 3600);
    assert.equal((await ok('logs', '--since', future, 'loc')).stdout, '');
  });

  test('docker logs -f follows a running container to its end', async () => {
    await ok('run', '-d', '--name', 'fol', '--log-driver', 'local', 'busybox', 'sh', '-c', 'echo a; sleep 1; echo b');
    const r = await ok('logs', '-f', 'fol');
    assert.equal(r.stdout, 'a\nb\n');
    assert.deepEqual(readdirSync(join(d.dataRoot, 'containers', JSON.parse((await ok('inspect', 'fol')).stdout)[0].Id, 'local-logs')), ['container.log']);
  });

  test('unknown options are refused at create', async () => {
    const r = await docker(d.host, ['create', '--log-driver', 'local', '--log-opt', 'labels=x', 'busybox', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown log opt 'labels' for log driver local/);
    const bad = await docker(d.host, ['create', '--log-driver', 'local', '--log-opt', 'max-file=0', 'busybox', 'true']);
    assert.notEqual(bad.code, 0);
  });
});
