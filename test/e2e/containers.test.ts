// Containers through the real docker CLI: run, logs, exec-less lifecycle,
// stop/kill/rm, restart policies and a daemon killed -9 underneath.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { docker, run, SKIFF, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { startBusyboxDaemon, stopBusyboxDaemon } from '../helpers/busybox.js';
import type { TestRegistry } from '../helpers/registry.js';

describe('containers', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  const dir = tempDir('skiff-containers-');

  before(async () => ({ d, reg } = await startBusyboxDaemon({ dir, extra: ['ip', 'cat'] })));
  after(() => stopBusyboxDaemon(d, reg));

  test('docker run --rm busybox echo hi prints hi and leaves nothing behind', async () => {
    const r = await docker(d.host, ['run', '--rm', 'busybox', 'echo', 'hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    assert.equal((await docker(d.host, ['ps', '-aq'])).stdout.trim(), '');
  });

  test('exit codes and stderr come through', async () => {
    const r = await docker(d.host, ['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    const missing = await docker(d.host, ['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(missing.code, 127, missing.stderr);
  });

  test('stdin piped into run -i', async () => {
    const r = await run('docker', ['-H', d.host, 'run', '-i', '--rm', 'busybox', 'cat'], { input: 'through stdin\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'through stdin\n');
  });

  test('run -d, ps, logs, stop (143), start 304, rm 409 then -f', async () => {
    const run = await docker(d.host, ['run', '-d', '--name', 'looper', 'busybox', 'sh', '-c', 'echo started; trap "exit 143" TERM; while true; do sleep 0.1; done']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await docker(d.host, ['ps', '--format', '{{.Names}} {{.Status}}']);
    assert.match(ps.stdout, /^looper Up /m);
    await new Promise((r) => setTimeout(r, 300));
    const logs = await docker(d.host, ['logs', 'looper']);
    assert.equal(logs.stdout, 'started\n');
    // logs -f follows until the container stops.
    const follow = docker(d.host, ['logs', '-f', 'looper']);
    await new Promise((r) => setTimeout(r, 300));
    await docker(d.host, ['exec', 'looper', 'sh', '-c', 'echo more > /proc/1/fd/1']);
    const sized = await docker(d.host, ['ps', '-s', '--format', '{{.Size}}', '--filter', 'name=looper']);
    assert.match(sized.stdout, /^\d+(\.\d+)?[kMG]?B \(virtual /);
    const again = await docker(d.host, ['start', 'looper']);
    assert.equal(again.code, 0);
    const rm = await docker(d.host, ['rm', 'looper']);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /You cannot remove a running container/);
    const stop = await docker(d.host, ['stop', '-t', '5', 'looper']);
    assert.equal(stop.code, 0, stop.stderr);
    const followed = await follow;
    assert.equal(followed.code, 0, followed.stderr);
    assert.equal(followed.stdout, 'started\nmore\n');
    const state = JSON.parse((await docker(d.host, ['inspect', 'looper'])).stdout)[0].State;
    assert.equal(state.Status, 'exited');
    assert.equal(state.ExitCode, 143);
    assert.equal(state.Running, false);
    assert.match((await docker(d.host, ['ps', '-a', '--format', '{{.Status}}', '--filter', 'name=looper'])).stdout, /^Exited \(143\)/);
    assert.equal((await docker(d.host, ['rm', 'looper'])).code, 0);
  });

  test('the default network is an isolated namespace with loopback; host is the host', async () => {
    const iso = await docker(d.host, ['run', '--rm', 'busybox', 'ip', '-o', 'link']);
    assert.equal(iso.code, 0, iso.stderr);
    assert.deepEqual(iso.stdout.trim().split('\n').map((l) => l.split(':')[1]?.trim()), ['lo']);
    const host = await docker(d.host, ['run', '--rm', '--network', 'host', 'busybox', 'ip', '-o', 'link']);
    assert.ok(host.stdout.trim().split('\n').length > 1);
  });

  test('a non-root USER and a read-only root', async () => {
    const u = await docker(d.host, ['run', '--rm', '--user', 'nobody', 'busybox', 'id', '-u']);
    assert.equal(u.stdout.trim(), '65534', u.stderr);
    const ro = await docker(d.host, ['run', '--rm', '--read-only', 'busybox', 'touch', '/x']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
  });

  test('docker events: the container lifecycle with Docker\'s attributes, replayed with --since/--until', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const r = await docker(d.host, ['run', '--rm', '--name', 'evented', '--label', 'app=ev', 'busybox', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const until = Math.floor(Date.now() / 1000) + 1;
    const ev = await docker(d.host, ['events', '--since', String(since), '--until', String(until), '--filter', 'container=evented', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.app}}']);
    assert.equal(ev.code, 0, ev.stderr);
    const actions = ev.stdout.trim().split('\n');
    assert.deepEqual(actions.map((l) => l.split(' ')[1]), ['create', 'start', 'die', 'destroy']);
    assert.ok(actions.every((l) => l.startsWith('container ') && l.endsWith(' evented ev')));
    const img = await docker(d.host, ['events', '--since', String(since), '--until', String(until), '--filter', 'type=image']);
    assert.equal(img.code, 0);
  });

  test('pause/unpause, rename, update, top, container prune', async () => {
    const run = await docker(d.host, ['run', '-d', '--name', 'worker', 'busybox', 'sleep', '300']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await docker(d.host, ['pause', 'worker'])).code, 0);
    assert.match((await docker(d.host, ['ps', '--format', '{{.Status}}', '--filter', 'name=worker'])).stdout, /\(Paused\)/);
    assert.equal(JSON.parse((await docker(d.host, ['inspect', 'worker'])).stdout)[0].State.Paused, true);
    assert.equal((await docker(d.host, ['unpause', 'worker'])).code, 0);
    assert.equal((await docker(d.host, ['rename', 'worker', 'worker2'])).code, 0);
    assert.equal((await docker(d.host, ['inspect', 'worker2'])).code, 0);
    const upd = await docker(d.host, ['update', '--restart', 'on-failure:3', 'worker2']);
    assert.equal(upd.code, 0, upd.stderr);
    assert.deepEqual(JSON.parse((await docker(d.host, ['inspect', 'worker2'])).stdout)[0].HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    const top = await docker(d.host, ['top', 'worker2']);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /sleep 300/);
    const stats = await docker(d.host, ['stats', '--no-stream', '--format', '{{.Name}}|{{.MemUsage}}|{{.PIDs}}', 'worker2']);
    assert.equal(stats.code, 0, stats.stderr);
    const [sname, mem, pids] = stats.stdout.trim().split('|');
    assert.equal(sname, 'worker2');
    assert.match(mem ?? '', /^[\d.]+[KMG]i?B \/ /);
    assert.equal(pids, '1');
    assert.equal((await docker(d.host, ['rm', '-f', 'worker2'])).code, 0);
    await docker(d.host, ['run', '--name', 'done1', 'busybox', 'true']);
    const prune = await docker(d.host, ['container', 'prune', '-f']);
    assert.equal(prune.code, 0, prune.stderr);
    assert.equal((await docker(d.host, ['ps', '-aq', '--filter', 'name=done1'])).stdout.trim(), '');
  });

  test('skiff run/ps/logs/stop/rm/inspect for boards without a docker CLI', async () => {
    const sk = (args: string[]) => run(SKIFF, ['-H', d.host, ...args]);
    const hi = await sk(['run', '--rm', 'busybox', 'sh', '-c', 'echo hi; echo oops >&2; exit 6']);
    assert.equal(hi.code, 6, hi.stderr);
    assert.equal(hi.stdout, 'hi\n');
    assert.equal(hi.stderr, 'oops\n');
    const bg = await sk(['run', '-d', '--name', 'bg', '-e', 'X=42', 'busybox', 'sh', '-c', 'echo $X; sleep 300']);
    assert.equal(bg.code, 0, bg.stderr);
    assert.match(bg.stdout, /^[0-9a-f]{64}\n$/);
    const ps = await sk(['ps']);
    assert.match(ps.stdout, /CONTAINER ID\s+IMAGE\s+COMMAND\s+STATUS\s+NAMES/);
    assert.match(ps.stdout, /busybox\s+"sh -c "echo \$X;.*Up .*bg$/m);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await sk(['logs', 'bg'])).stdout, '42\n');
    const ex = await sk(['exec', '-e', 'Y=7', 'bg', 'sh', '-c', 'echo $Y; exit 3']);
    assert.equal(ex.code, 3, ex.stderr);
    assert.equal(ex.stdout, '7\n');
    assert.equal(JSON.parse((await sk(['inspect', 'bg'])).stdout)[0].Name, '/bg');
    assert.equal((await sk(['stop', '-t', '1', 'bg'])).code, 0);
    assert.equal((await sk(['rm', 'bg'])).code, 0);
    const missing = await sk(['rm', 'bg']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such container: bg/);
    const notFound = await sk(['run', '--rm', 'busybox', 'nope-cmd']);
    assert.equal(notFound.code, 127, notFound.stderr);
  });

  test('joining the network of a container that does not exist fails', async () => {
    const r = await docker(d.host, ['run', '--rm', '--network', 'container:x', 'busybox', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No such container: x/);
  });

  test('restart policy always: the container comes back after it exits', async () => {
    const run = await docker(d.host, ['run', '-d', '--name', 'flaky', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.2; exit 1']);
    assert.equal(run.code, 0, run.stderr);
    let count = 0;
    for (let i = 0; i < 50 && count < 2; i++) {
      await new Promise((r) => setTimeout(r, 200));
      count = JSON.parse((await docker(d.host, ['inspect', 'flaky'])).stdout)[0].RestartCount;
    }
    assert.ok(count >= 2, `RestartCount ${count}`);
    assert.equal((await docker(d.host, ['rm', '-f', 'flaky'])).code, 0);
  });

  test('kill -9 of the daemon: the exit code is still known after the restart', async () => {
    const run = await docker(d.host, ['run', '-d', '--name', 'survivor', 'busybox', 'sh', '-c', 'sleep 1; exit 7']);
    assert.equal(run.code, 0, run.stderr);
    await d.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    d = await startDaemon({ dir });
    const state = JSON.parse((await docker(d.host, ['inspect', 'survivor'])).stdout)[0].State;
    assert.equal(state.Status, 'exited');
    assert.equal(state.ExitCode, 7);
    assert.equal((await docker(d.host, ['rm', 'survivor'])).code, 0);
  });
});
