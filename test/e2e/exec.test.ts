// docker exec and TTYs through the real docker CLI: exit codes, -u/-e/-w/-d/-i,
// exec into a stopped container, and run -it / exec -it in a real pseudo-terminal
// (util-linux `script` gives the CLI one), with resizes.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, parseResponse, rawRequest, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { startBusyboxDaemon, stopBusyboxDaemon } from '../helpers/busybox.js';
import type { TestRegistry } from '../helpers/registry.js';

const DOCKER_CONFIG = join(tmpdir(), 'skiff-test-docker-config');

interface Out {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[], input?: string, timeout = 30_000): Promise<Out> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DOCKER_CONFIG } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // With no input, stdin stays open (a terminal that types nothing) until the end.
    if (input !== undefined) child.stdin.end(input);
  });
}

/** Runs a docker command line in a pseudo-terminal of rows×cols (util-linux script). */
function inPty(host: string, dockerArgs: string, rows = 33, cols = 111): Promise<Out> {
  return sh('script', ['-q', '-e', '-c', `stty rows ${rows} cols ${cols}; exec docker -H ${host} ${dockerArgs}`, '/dev/null']);
}

/**
 * A shell script (quoted for `script -c`) that prints its tty, waits up to 5 s
 * for the terminal to reach rows×cols (the CLI's resize arrives after the
 * start), prints `stty size` and exits with `code`.
 */
function waitSize(rows: number, cols: number, code: number): string {
  return `'tty; i=0; while [ "$(stty size)" != "${rows} ${cols}" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; stty size; exit ${code}'`;
}

function api(d: TestDaemon, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const head = `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` + (body === undefined ? 'Content-Length: 0\r\n' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n`);
  return rawRequest(d.socket, `${head}\r\n${text}`).then((raw) => {
    const r = parseResponse(raw);
    return { status: r.status, body: r.body };
  });
}

describe('exec and TTYs', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  const dir = tempDir('skiff-exec-');

  before(async () => {
    ({ d, reg } = await startBusyboxDaemon({ dir, extra: ['cat', 'tty'] }));
    const run = await docker(d.host, ['run', '-d', '--name', 'box', 'busybox', 'sleep', '1000']);
    assert.equal(run.code, 0, run.stderr);
  });
  after(() => stopBusyboxDaemon(d, reg));

  test('docker exec box echo hi; exit codes come back', async () => {
    const r = await docker(d.host, ['exec', 'box', 'echo', 'hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const four = await docker(d.host, ['exec', 'box', 'sh', '-c', 'echo out; echo err >&2; exit 4']);
    assert.equal(four.code, 4);
    assert.equal(four.stdout, 'out\n');
    assert.equal(four.stderr, 'err\n');
  });

  test('exec events: exec_create, exec_start, exec_die with the exit code (GET /events)', async () => {
    const since = (Date.now() / 1000).toFixed(3);
    const r = await docker(d.host, ['exec', 'box', 'sh', '-c', 'exit 3']);
    assert.equal(r.code, 3, r.stderr);
    const bare = await docker(d.host, ['exec', 'box', 'true']);
    assert.equal(bare.code, 0, bare.stderr);
    const until = (Date.now() / 1000 + 1).toFixed(3);
    const filters = encodeURIComponent(JSON.stringify({ event: ['exec_create', 'exec_start', 'exec_die'], container: ['box'] }));
    const raw = await rawRequest(d.socket, `GET /events?since=${since}&until=${until}&filters=${filters} HTTP/1.0\r\nHost: x\r\n\r\n`, 5000);
    const events = raw.slice(raw.indexOf('\r\n\r\n') + 4).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> }; status: string });
    const actions = events.map((e) => e.Action);
    assert.deepEqual(actions, ['exec_create: sh -c exit 3', 'exec_start: sh -c exit 3', 'exec_die', 'exec_create: true ', 'exec_start: true ', 'exec_die']);
    const execId = events[0]!.Actor.Attributes.execID;
    assert.match(execId ?? '', /^[0-9a-f]{64}$/);
    assert.ok(events.slice(0, 3).every((e) => e.Actor.Attributes.execID === execId && e.Actor.Attributes.name === 'box' && e.Actor.Attributes.image === 'busybox'));
    assert.equal(events[2]!.Actor.Attributes.exitCode, '3');
    assert.equal(events[5]!.Actor.Attributes.exitCode, '0');
    assert.equal(events[0]!.status, 'exec_create: sh -c exit 3');
  });

  test('-u, -e, -w', async () => {
    const u = await docker(d.host, ['exec', '-u', 'nobody', 'box', 'id', '-u']);
    assert.equal(u.stdout, '65534\n', u.stderr);
    const e = await docker(d.host, ['exec', '-e', 'A=b', 'box', 'sh', '-c', 'echo $A; echo $PATH']);
    assert.equal(e.stdout, 'b\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n', e.stderr);
    const w = await docker(d.host, ['exec', '-w', '/tmp', 'box', 'pwd']);
    assert.equal(w.stdout, '/tmp\n', w.stderr);
    const bad = await docker(d.host, ['exec', '-u', 'nosuchuser', 'box', 'true']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /unable to find user nosuchuser/);
  });

  test('--privileged gets every capability; a non-root user none', async () => {
    const cap = async (args: string[]) => {
      const r = await docker(d.host, ['exec', ...args, 'box', 'sh', '-c', 'grep CapEff /proc/self/status']);
      assert.equal(r.code, 0, r.stderr);
      return BigInt(`0x${r.stdout.split(':')[1]!.trim()}`);
    };
    const plain = await cap([]);
    const priv = await cap(['--privileged']);
    assert.ok(plain > 0n && priv > plain, `${plain.toString(16)} < ${priv.toString(16)}`);
    assert.equal(plain & (1n << 21n), 0n, 'no CAP_SYS_ADMIN by default');
    assert.notEqual(priv & (1n << 21n), 0n, 'CAP_SYS_ADMIN when privileged');
    assert.equal(await cap(['-u', 'nobody']), 0n);
  });

  test('a command that does not exist: 126 and the runtime error', async () => {
    const r = await docker(d.host, ['exec', 'box', 'no-such-command']);
    assert.equal(r.code, 126, r.stderr);
    assert.equal(r.stdout, 'OCI runtime exec failed: exec failed: unable to start container process: exec: "no-such-command": executable file not found in $PATH: unknown\r\n');
    assert.equal(JSON.parse((await docker(d.host, ['inspect', 'box'])).stdout)[0].State.Running, true);
  });

  test('exec -d: 200 at once, the process runs detached', async () => {
    const r = await docker(d.host, ['exec', '-d', 'box', 'sh', '-c', 'sleep 1; touch /tmp/x']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.notEqual((await docker(d.host, ['exec', 'box', 'test', '-e', '/tmp/x'])).code, 0, 'not yet');
    let ok = false;
    for (let i = 0; i < 60 && !ok; i++) {
      await new Promise((res) => setTimeout(res, 100));
      ok = (await docker(d.host, ['exec', 'box', 'test', '-e', '/tmp/x'])).code === 0;
    }
    assert.ok(ok, '/tmp/x was created');
    const dt = await docker(d.host, ['exec', '-dt', 'box', 'sh', '-c', 'tty > /tmp/y']);
    assert.equal(dt.code, 0, dt.stderr);
    let tty = '';
    for (let i = 0; i < 30 && !tty; i++) {
      await new Promise((res) => setTimeout(res, 100));
      tty = (await docker(d.host, ['exec', 'box', 'cat', '/tmp/y'])).stdout;
    }
    assert.match(tty, /^\/dev\/pts\/\d+\n$/);
  });

  test('stdin: echo data | docker exec -i box cat', async () => {
    const r = await sh('docker', ['-H', d.host, 'exec', '-i', 'box', 'cat'], 'data\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'data\n');
    const wc = await sh('docker', ['-H', d.host, 'exec', '-i', 'box', 'sh', '-c', 'wc -c; exit 3'], 'x'.repeat(200_000));
    assert.equal(wc.code, 3, wc.stderr);
    assert.equal(wc.stdout.trim(), '200000');
  });

  test('the API: create 404/409/400, inspect, start twice, resize, records kept', async () => {
    assert.equal((await api(d, 'POST', '/v1.41/containers/nope/exec', { Cmd: ['true'] })).status, 404);
    const noCmd = await api(d, 'POST', '/v1.41/containers/box/exec', { Cmd: [] });
    assert.equal(noCmd.status, 400);
    assert.match(noCmd.body, /No exec command specified/);
    const created = await api(d, 'POST', '/v1.41/containers/box/exec', { Cmd: ['sh', '-c', 'exit 5'], AttachStdout: true, User: 'nobody' });
    assert.equal(created.status, 201, created.body);
    const id = (JSON.parse(created.body) as { Id: string }).Id;
    assert.match(id, /^[0-9a-f]{64}$/);
    const before = JSON.parse((await api(d, 'GET', `/v1.41/exec/${id}/json`)).body) as Record<string, unknown>;
    assert.deepEqual(before.ProcessConfig, { tty: false, entrypoint: 'sh', arguments: ['-c', 'exit 5'], privileged: false, user: 'nobody' });
    assert.equal(before.ExitCode, null);
    assert.equal(before.Running, false);
    assert.equal(before.OpenStdout, true);
    assert.equal(before.OpenStdin, false);
    assert.equal(before.Pid, 0);
    // Without Upgrade: a plain 200 raw stream until the process exits.
    const raw = await rawRequest(d.socket, `POST /v1.41/exec/${id}/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"Detach":false}`);
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(raw, /Content-Type: application\/vnd\.docker\.raw-stream/i);
    const after = JSON.parse((await api(d, 'GET', `/v1.41/exec/${id}/json`)).body) as Record<string, unknown>;
    assert.equal(after.ExitCode, 5);
    assert.equal(after.Running, false);
    assert.ok((after.Pid as number) > 0);
    assert.equal(after.ContainerID, JSON.parse((await docker(d.host, ['inspect', 'box'])).stdout)[0].Id);
    const again = await api(d, 'POST', `/v1.41/exec/${id}/start`, { Detach: true });
    assert.equal(again.status, 409);
    assert.match(again.body, /has already run/);
    assert.equal((await api(d, 'GET', '/v1.41/exec/nope/json')).status, 404);
    assert.match((await api(d, 'POST', '/v1.41/exec/nope/start', { Detach: true })).body, /No such exec instance: nope/);
    assert.equal((await api(d, 'POST', `/v1.41/exec/${id}/resize?h=10&w=20`)).status, 200);
    assert.equal((await api(d, 'POST', `/v1.41/exec/${id}/resize?h=x&w=20`)).status, 400);
    // Container resize: 404 unknown, 400 malformed, 200 without a TTY (ignored, as containerd does).
    assert.equal((await api(d, 'POST', '/v1.41/containers/nope/resize?h=10&w=20')).status, 404);
    assert.equal((await api(d, 'POST', '/v1.41/containers/box/resize?h=10')).status, 400);
    assert.equal((await api(d, 'POST', '/v1.41/containers/box/resize?h=10&w=20')).status, 200);
  });

  test('an exec created but not started is gone once its container stops', async () => {
    assert.equal((await docker(d.host, ['run', '-d', '--name', 'shortlived', 'busybox', 'sleep', '1000'])).code, 0);
    const id = (JSON.parse((await api(d, 'POST', '/v1.41/containers/shortlived/exec', { Cmd: ['true'] })).body) as { Id: string }).Id;
    assert.equal((await api(d, 'GET', `/v1.41/exec/${id}/json`)).status, 200);
    assert.equal((await docker(d.host, ['kill', 'shortlived'])).code, 0);
    assert.equal((await docker(d.host, ['wait', 'shortlived'])).code, 0);
    assert.equal((await api(d, 'POST', `/v1.41/exec/${id}/start`, { Detach: true })).status, 404);
    assert.equal((await api(d, 'GET', `/v1.41/exec/${id}/json`)).status, 404);
    assert.equal((await docker(d.host, ['rm', 'shortlived'])).code, 0);
  });

  test('exec into a stopped container: 409 is not running, rc 1; resize 409', async () => {
    assert.equal((await docker(d.host, ['run', '--name', 'stopped', 'busybox', 'true'])).code, 0);
    const r = await docker(d.host, ['exec', 'stopped', 'echo', 'hi']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error response from daemon: Container [0-9a-f]{64} is not running/);
    const rs = await api(d, 'POST', '/v1.41/containers/stopped/resize?h=10&w=20');
    assert.equal(rs.status, 409);
    assert.match(rs.body, /is not running/);
    assert.equal((await docker(d.host, ['rm', 'stopped'])).code, 0);
  });

  test('exec into a paused container: 409 with moby words', async (t) => {
    const p = await docker(d.host, ['pause', 'box']);
    if (p.code !== 0) {
      t.skip(`pause: ${p.stderr}`);
      return;
    }
    try {
      const r = await docker(d.host, ['exec', 'box', 'true']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Container box is paused, unpause the container before exec/);
    } finally {
      assert.equal((await docker(d.host, ['unpause', 'box'])).code, 0);
    }
  });

  test('POST /containers/{id}/resize sets the size of a TTY container', async () => {
    const run = await docker(d.host, ['run', '-dit', '--name', 'ttybox', 'busybox', 'sh']);
    assert.equal(run.code, 0, run.stderr);
    const r = await api(d, 'POST', '/v1.41/containers/ttybox/resize?h=12&w=34');
    assert.equal(r.status, 200, r.body);
    const size = await docker(d.host, ['exec', 'ttybox', 'sh', '-c', 'stty -F /dev/pts/0 size']);
    assert.equal(size.stdout, '12 34\n', size.stderr);
    assert.equal((await api(d, 'POST', '/v1.41/containers/ttybox/resize?h=50&w=160')).status, 200);
    assert.equal((await docker(d.host, ['exec', 'ttybox', 'sh', '-c', 'stty -F /dev/pts/0 size'])).stdout, '50 160\n');
    assert.equal((await docker(d.host, ['rm', '-f', 'ttybox'])).code, 0);
  });

  test('docker run -t without -i: a pty, raw output', async () => {
    const r = await docker(d.host, ['run', '-t', '--rm', 'busybox', 'tty']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '/dev/pts/0\r\n');
  });

  test('docker run -it in a pseudo-terminal: /dev/pts/0 and the CLI terminal size', async () => {
    const r = await inPty(d.host, `run -it --rm busybox sh -c ${waitSize(33, 111, 6)}`, 33, 111);
    assert.equal(r.code, 6, r.stdout + r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/0\r\n/);
    assert.match(r.stdout, /^33 111\r$/m);
  });

  test('docker exec -it in a pseudo-terminal: a pty of its own, resized to the CLI terminal', async () => {
    const r = await inPty(d.host, `exec -it box sh -c ${waitSize(27, 93, 2)}`, 27, 93);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/\d+\r\n/);
    assert.match(r.stdout, /^27 93\r$/m);
    const t = await inPty(d.host, 'exec -it box tty');
    assert.equal(t.code, 0, t.stdout + t.stderr);
    assert.match(t.stdout, /^\/dev\/pts\/\d+\r$/m);
  });

  test('exec on crun: output, exit code, stdin, a TTY resized', { skip: spawnSync('crun', ['--version']).status !== 0 && 'crun is not installed' }, async () => {
    // Through the API: the CLI's create body (PidsLimit 0 → pids.max -1) trips crun 1.8 on cgroup v1.
    const created = await api(d, 'POST', '/v1.41/containers/create?name=crunbox', { Image: 'busybox', Cmd: ['sleep', '1000'], HostConfig: { Runtime: 'crun' } });
    assert.equal(created.status, 201, created.body);
    const started = await docker(d.host, ['start', 'crunbox']);
    assert.equal(started.code, 0, started.stderr);
    try {
      const r = await docker(d.host, ['exec', '-u', 'nobody', '-e', 'A=b', 'crunbox', 'sh', '-c', 'echo $A $(id -u); exit 3']);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, 'b 65534\n');
      const i = await sh('docker', ['-H', d.host, 'exec', '-i', 'crunbox', 'cat'], 'via crun\n');
      assert.equal(i.stdout, 'via crun\n', i.stderr);
      const t = await inPty(d.host, `exec -it crunbox sh -c ${waitSize(21, 77, 0)}`, 21, 77);
      assert.equal(t.code, 0, t.stdout + t.stderr);
      assert.match(t.stdout, /\/dev\/pts\/\d+\r\n/);
      assert.match(t.stdout, /^21 77\r$/m);
      const missing = await docker(d.host, ['exec', 'crunbox', 'no-such-command']);
      assert.equal(missing.code, 126);
      assert.match(missing.stdout, /^OCI runtime exec failed: .*no-such-command.*: unknown\r\n$/);
    } finally {
      await docker(d.host, ['rm', '-f', 'crunbox']);
    }
  });

  test('exec -i with a TTY: typed input reaches the process', async () => {
    const r = await sh('script', ['-q', '-e', '-c', `docker -H ${d.host} exec -it box sh -c 'read x; echo got:$x'`, '/dev/null'], 'hello\n');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /got:hello/);
  });
});
