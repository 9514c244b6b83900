// What a container may and may not do: capabilities, masked paths, devices,
// memory limits, privileged mode; and what survives a daemon restart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { docker, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { startBusyboxDaemon, stopBusyboxDaemon } from '../helpers/busybox.js';
import type { TestRegistry } from '../helpers/registry.js';

describe('confinement and daemon restarts', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  const dir = tempDir('skiff-confine-');

  before(async () => ({ d, reg } = await startBusyboxDaemon({ dir, extra: ['dd', 'wc'] })));
  after(() => stopBusyboxDaemon(d, reg));

  const capEff = async (args: string[]) => {
    const r = await docker(d.host, ['run', '--rm', ...args, 'busybox', 'grep', 'CapEff', '/proc/self/status']);
    assert.equal(r.code, 0, r.stderr);
    return BigInt('0x' + (r.stdout.split(/\s+/)[1] ?? '0'));
  };
  const CAP_SYS_ADMIN = 21n;
  const CAP_NET_ADMIN = 12n;

  test('no CAP_SYS_ADMIN by default; --cap-add and --privileged grant more', async () => {
    const def = await capEff([]);
    assert.equal((def >> CAP_SYS_ADMIN) & 1n, 0n);
    assert.equal((def >> CAP_NET_ADMIN) & 1n, 0n);
    const added = await capEff(['--cap-add', 'NET_ADMIN']);
    assert.equal((added >> CAP_NET_ADMIN) & 1n, 1n);
    const priv = await capEff(['--privileged']);
    assert.equal((priv >> CAP_SYS_ADMIN) & 1n, 1n);
    const dropped = await capEff(['--cap-drop', 'ALL']);
    assert.equal(dropped, 0n);
  });

  test('masked and read-only kernel paths', async () => {
    const masked = await docker(d.host, ['run', '--rm', 'busybox', 'sh', '-c', 'wc -c < /proc/timer_list; touch /proc/sys/kernel/x 2>&1; echo done']);
    assert.equal(masked.code, 0, masked.stderr);
    assert.match(masked.stdout, /^0\n/);
    assert.match(masked.stdout, /Read-only file system|Permission denied|No such file/);
    const mountErr = await docker(d.host, ['run', '--rm', 'busybox', 'mount', '-t', 'tmpfs', 'none', '/mnt']);
    assert.notEqual(mountErr.code, 0);
  });

  test('devices: --device maps a host node into the container', async () => {
    const r = await docker(d.host, ['run', '--rm', '--device', '/dev/null:/dev/xnull', 'busybox', 'sh', '-c', 'echo x > /dev/xnull && ls -l /dev/xnull']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^c.* 1,\s+3 /);
    // /dev/mem (c 1:1) is not in Docker's default device rules: the device cgroup refuses it.
    const denied = await docker(d.host, ['run', '--rm', 'busybox', 'sh', '-c', 'mknod /tmp/m c 1 1 && head -c 1 /tmp/m']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Operation not permitted/);
  });

  test('a memory limit is enforced', async () => {
    const r = await docker(d.host, ['run', '--rm', '-m', '16m', 'busybox', 'sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), String(16 * 1024 * 1024));
    // Filling a tmpfs beyond the limit gets the container OOM-killed (137).
    const oom = await docker(d.host, ['run', '--name', 'oomer', '-m', '16m', '--memory-swap', '16m', '--tmpfs', '/big', 'busybox', 'dd', 'if=/dev/zero', 'of=/big/f', 'bs=1M', 'count=64']);
    assert.equal(oom.code, 137, oom.stderr);
    const st = JSON.parse((await docker(d.host, ['inspect', 'oomer'])).stdout)[0].State;
    assert.equal(st.OOMKilled, true);
    assert.equal((await docker(d.host, ['rm', 'oomer'])).code, 0);
    // A plain SIGKILL is not an OOM kill.
    assert.equal((await docker(d.host, ['run', '-d', '--name', 'killed', 'busybox', 'sleep', '300'])).code, 0);
    assert.equal((await docker(d.host, ['kill', 'killed'])).code, 0);
    assert.equal((await docker(d.host, ['wait', 'killed'])).stdout.trim(), '137');
    assert.equal(JSON.parse((await docker(d.host, ['inspect', 'killed'])).stdout)[0].State.OOMKilled, false);
    assert.equal((await docker(d.host, ['rm', 'killed'])).code, 0);
  });

  test('kill -9 of the daemon: a restart-always container is restarted when the daemon comes back', async () => {
    const r = await docker(d.host, ['run', '-d', '--name', 'svc', '--restart', 'always', 'busybox', 'sleep', '300']);
    assert.equal(r.code, 0, r.stderr);
    const before = JSON.parse((await docker(d.host, ['inspect', 'svc'])).stdout)[0].State.StartedAt;
    await d.stop('SIGKILL');
    d = await startDaemon({ dir });
    let state = JSON.parse((await docker(d.host, ['inspect', 'svc'])).stdout)[0].State;
    for (let i = 0; i < 30 && !state.Running; i++) {
      await new Promise((res) => setTimeout(res, 200));
      state = JSON.parse((await docker(d.host, ['inspect', 'svc'])).stdout)[0].State;
    }
    assert.equal(state.Running, true);
    assert.notEqual(state.StartedAt, before, 'without live-restore the old process was stopped and a new one started');
    assert.equal((await docker(d.host, ['rm', '-f', 'svc'])).code, 0);
  });

  test('live-restore: a running container survives a daemon restart untouched', async () => {
    await d.stop('SIGTERM');
    d = await startDaemon({ dir, args: ['--live-restore'] });
    const r = await docker(d.host, ['run', '-d', '--name', 'keeper', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done']);
    assert.equal(r.code, 0, r.stderr);
    const pid = JSON.parse((await docker(d.host, ['inspect', 'keeper'])).stdout)[0].State.Pid;
    assert.ok(pid > 0);
    await d.stop('SIGTERM');
    process.kill(pid, 0); // still alive while the daemon is down
    d = await startDaemon({ dir, args: ['--live-restore'] });
    const state = JSON.parse((await docker(d.host, ['inspect', 'keeper'])).stdout)[0].State;
    assert.equal(state.Running, true);
    assert.equal(state.Pid, pid);
    await new Promise((res) => setTimeout(res, 600));
    const stop = await docker(d.host, ['stop', '-t', '1', 'keeper']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(JSON.parse((await docker(d.host, ['inspect', 'keeper'])).stdout)[0].State.Running, false);
    const logs = await docker(d.host, ['logs', 'keeper']);
    assert.match(logs.stdout, /tick1\n/);
    assert.equal((await docker(d.host, ['rm', 'keeper'])).code, 0);
  });
});

describe('health checks', () => {
  let reg: TestRegistry;
  let d: TestDaemon;

  before(async () => ({ d, reg } = await startBusyboxDaemon({ args: ['--experimental'] })));
  after(() => stopBusyboxDaemon(d, reg));

  const health = async (name: string) => JSON.parse((await docker(d.host, ['inspect', name])).stdout)[0].State.Health;

  test('healthy, then unhealthy; --experimental restarts an unhealthy container (balenaEngine)', async () => {
    const r = await docker(d.host, ['run', '-d', '--name', 'hc', '--restart', 'always', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '200ms', '--health-retries', '2', 'busybox', 'sh', '-c', 'touch /tmp/ok; sleep 300']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await health('hc')).Status, 'starting');
    let h = await health('hc');
    for (let i = 0; i < 30 && h.Status !== 'healthy'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      h = await health('hc');
    }
    assert.equal(h.Status, 'healthy');
    assert.equal(h.Log.at(-1).ExitCode, 0);
    assert.match((await docker(d.host, ['ps', '--format', '{{.Status}}', '--filter', 'name=hc'])).stdout, /\(healthy\)/);
    const startedAt = JSON.parse((await docker(d.host, ['inspect', 'hc'])).stdout)[0].State.StartedAt;
    assert.equal((await docker(d.host, ['exec', 'hc', 'rm', '/tmp/ok'])).code, 0);
    let restarted = false;
    for (let i = 0; i < 60 && !restarted; i++) {
      await new Promise((res) => setTimeout(res, 200));
      const st = JSON.parse((await docker(d.host, ['inspect', 'hc'])).stdout)[0].State;
      restarted = st.StartedAt !== startedAt && st.Running;
    }
    assert.ok(restarted, 'the unhealthy container was restarted');
  });
});
