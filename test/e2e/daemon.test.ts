// The built x64 executable as a daemon, driven by the real docker CLI, raw
// HTTP and skiff's own client commands.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, HOST_NETWORK_SAFE_ARGS, parseResponse, ping, rawRequest, run, SKIFF, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';

describe('a running daemon', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.cleanup());

  test('docker version talks API 1.41 and names skiff', async () => {
    const r = await docker(d.host, ['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /API version:\s+1\.41 \(minimum version 1\.12\)/);
    assert.match(r.stdout, /Server: skiff \d/);
    assert.match(r.stdout, /1\.41 \(downgraded from/);
    const json = await docker(d.host, ['version', '--format', '{{json .Server}}']);
    const server = JSON.parse(json.stdout);
    assert.equal(server.ApiVersion, '1.41');
    assert.ok(server.Components.some((c: { Name: string }) => c.Name === 'skiff'));
  });

  test('docker info shows real figures', async () => {
    const r = await docker(d.host, ['info', '--format', '{{json .}}']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.DockerRootDir, d.dataRoot);
    assert.equal(info.Driver, 'overlay2');
    assert.equal(info.NCPU > 0, true);
    assert.equal(info.MemTotal > 0, true);
    assert.equal(info.KernelVersion, readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
    assert.match(info.ID, /^[0-9a-f-]{36}$/);
    assert.equal(info.Swarm.LocalNodeState, 'inactive');
    const plain = await docker(d.host, ['info']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.doesNotMatch(plain.stderr, /error/i);
  });

  test('commands the daemon does not serve give the Docker error and exit 1', async () => {
    const nodes = await docker(d.host, ['node', 'ls']);
    assert.equal(nodes.code, 1);
    assert.match(nodes.stderr, /Error response from daemon: This node is not a swarm manager/);
    const plugins = await docker(d.host, ['plugin', 'ls']);
    assert.equal(plugins.code, 1);
    assert.match(plugins.stderr, /Error response from daemon: page not found/);
  });

  test('raw HTTP: headers, versions, HEAD ping', async () => {
    const head = parseResponse(await rawRequest(d.socket, 'HEAD /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: close\r\n\r\n'));
    assert.equal(head.status, 200);
    assert.equal(head.headers['api-version'], '1.41');
    assert.equal(head.headers['ostype'], 'linux');
    assert.ok(head.headers['server']);
    const tooNew = parseResponse(await rawRequest(d.socket, 'GET /v1.99/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(tooNew.status, 400);
    assert.equal(tooNew.headers['content-type'], 'application/json');
    const unversioned = parseResponse(await rawRequest(d.socket, 'GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(JSON.parse(unversioned.body).Engine, 'balena-engine');
  });

  test('skiff version and info through the socket', async () => {
    const v = await run(SKIFF, ['-H', d.host, 'version']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /Server: skiff/);
    assert.match(v.stdout, /API version:\s+1\.41 \(minimum version 1\.12\)/);
    const env = await run(SKIFF, ['info'], { env: { ...process.env, SKIFF_HOST: d.host } });
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stdout, new RegExp(`Skiff Root Dir: ${d.dataRoot}`));
  });

  test('a second daemon on the same data root is refused, also through a symlink', async () => {
    const other = tempDir();
    const link = join(other, 'link');
    await run('ln', ['-s', d.dataRoot, link]);
    for (const root of [d.dataRoot, link]) {
      const r = await run(SKIFF, ['daemon', ...HOST_NETWORK_SAFE_ARGS, '--data-root', root, '-H', `unix://${join(other, 's.sock')}`, '--pidfile', join(other, 'pid'), '--config-file', join(other, 'none.json'), '--config-file', d.dir + '/daemon.json']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`data root ${d.dataRoot} is in use by another skiff daemon \\(pid ${d.child.pid}\\)`));
    }
    assert.ok(await ping(d.socket));
  });
});

describe('daemon lifecycle', () => {
  test('SIGTERM stops cleanly: exit 0, socket and pid file removed', async () => {
    const d = await startDaemon();
    try {
      assert.equal(readFileSync(d.pidfile, 'utf8').trim(), String(d.child.pid));
      assert.equal((await d.stop('SIGTERM')), 0);
      assert.equal(existsSync(d.socket), false);
      assert.equal(existsSync(d.pidfile), false);
      assert.match(d.logs(), /level=info msg="Daemon shutdown complete"/);
    } finally {
      d.cleanup();
    }
  });

  test('SIGINT also stops cleanly', async () => {
    const d = await startDaemon();
    try {
      assert.equal(await d.stop('SIGINT'), 0);
    } finally {
      d.cleanup();
    }
  });

  test('after kill -9 the next daemon starts: no stale lock, stale socket replaced, same engine ID', async () => {
    const dir = tempDir();
    const first = await startDaemon({ dir });
    const info1 = JSON.parse((await docker(first.host, ['info', '--format', '{{json .}}'])).stdout);
    await first.stop('SIGKILL');
    assert.ok(existsSync(first.socket), 'kill -9 leaves the socket file behind');
    const second = await startDaemon({ dir });
    try {
      const info2 = JSON.parse((await docker(second.host, ['info', '--format', '{{json .}}'])).stdout);
      assert.equal(info2.ID, info1.ID);
    } finally {
      second.cleanup();
    }
  });

  test('fd:// takes the socket from systemd socket activation', async () => {
    const dir = tempDir();
    const sock = join(dir, 'activated.sock');
    writeFileSync(join(dir, 'daemon.json'), '{}');
    // python3 plays systemd: bind the socket, put it on fd 3, set LISTEN_* and exec.
    const script = [
      'import os, socket, sys',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      `s.bind(${JSON.stringify(sock)})`,
      's.listen(16)',
      // Python sockets are close-on-exec, and fd 3 may already be this socket.
      'if s.fileno() != 3: os.dup2(s.fileno(), 3)',
      'os.set_inheritable(3, True)',
      'os.environ["LISTEN_FDS"] = "1"',
      'os.environ["LISTEN_PID"] = str(os.getpid())',
      'os.execv(sys.argv[1], sys.argv[1:])',
    ].join('\n');
    const { spawn } = await import('node:child_process');
    const child = spawn('python3', ['-c', script, SKIFF, 'daemon', ...HOST_NETWORK_SAFE_ARGS, '--data-root', join(dir, 'root'), '-H', 'fd://', '--pidfile', join(dir, 'pid'), '--config-file', join(dir, 'daemon.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let logs = '';
    child.stderr.on('data', (b: Buffer) => (logs += b.toString()));
    try {
      const deadline = Date.now() + 10_000;
      while (!(await ping(sock)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const r = await docker(`unix://${sock}`, ['version', '--format', '{{.Server.APIVersion}}']);
      assert.equal(r.stdout.trim(), '1.41', logs);
      assert.match(logs, /API listen on fd:\/\/3/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('fd:// without socket activation is a clear error', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'daemon.json'), '{}');
    const r = await run(SKIFF, ['daemon', ...HOST_NETWORK_SAFE_ARGS, '--data-root', join(dir, 'root'), '-H', 'fd://', '--pidfile', join(dir, 'pid'), '--config-file', join(dir, 'daemon.json')], { env: { ...process.env, LISTEN_FDS: '', LISTEN_PID: '' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no sockets found via socket activation/);
  });
});

describe('the API socket', () => {
  test('mode 0660, owned by --group', async () => {
    const { statSync } = await import('node:fs');
    const d = await startDaemon({ args: ['--group', 'daemon'] });
    try {
      const st = statSync(d.socket);
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.uid, 0);
      const gid = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('daemon:'))?.split(':')[2];
      assert.equal(String(st.gid), gid);
    } finally {
      d.cleanup();
    }
  });

  test('a socket another daemon listens on is not stolen', async () => {
    const d = await startDaemon();
    const dir = tempDir();
    writeFileSync(join(dir, 'daemon.json'), '{}');
    try {
      const r = await run(SKIFF, ['daemon', ...HOST_NETWORK_SAFE_ARGS, '--data-root', join(dir, 'root'), '-H', d.host, '--pidfile', join(dir, 'pid'), '--config-file', join(dir, 'daemon.json')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /another daemon is already listening on/);
      assert.ok(await ping(d.socket));
    } finally {
      d.cleanup();
    }
  });
});

describe('daemon configuration errors', () => {
  const dir = tempDir();
  const base = [...HOST_NETWORK_SAFE_ARGS, '--data-root', join(dir, 'root'), '-H', `unix://${join(dir, 's.sock')}`, '--pidfile', join(dir, 'pid')];

  test('unknown daemon.json keys stop the daemon with exit 1', async () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ 'data-rot': '/x' }));
    const r = await run(SKIFF, ['daemon', ...base, '--config-file', join(dir, 'bad.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /level=fatal msg=".*the following directives don't match any configuration option: data-rot/);
  });

  test('a flag that conflicts with the file is refused', async () => {
    writeFileSync(join(dir, 'conf.json'), JSON.stringify({ 'max-download-attempts': 10 }));
    const r = await run(SKIFF, ['daemon', ...base, '--config-file', join(dir, 'conf.json'), '--max-download-attempts', '3']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /specified both as a flag and in the configuration file: max-download-attempts/);
  });

  test('an explicit --config-file that is missing is an error', async () => {
    const r = await run(SKIFF, ['daemon', ...base, '--config-file', join(dir, 'missing.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such file or directory/);
  });

  test('an explicit --group that does not exist is an error', async () => {
    writeFileSync(join(dir, 'ok.json'), '{}');
    const r = await run(SKIFF, ['daemon', ...base, '--config-file', join(dir, 'ok.json'), '--group', 'no-such-group-skiff']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /group no-such-group-skiff not found/);
  });
});

describe('skiff command line', () => {
  test('--version, help and usage errors', async () => {
    const v = await run(SKIFF, ['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^skiff version \S+, build \S+\n$/);
    const help = await run(SKIFF, ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Commands:\n {2}daemon/);
    const unknown = await run(SKIFF, ['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /'frobnicate' is not a skiff command/);
    const badFlag = await run(SKIFF, ['daemon', '--no-such-flag']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /unknown flag: --no-such-flag\nSee 'skiff daemon --help'/);
    const extra = await run(SKIFF, ['info', 'extra']);
    assert.equal(extra.code, 2);
    const daemonHelp = await run(SKIFF, ['daemon', '--help']);
    assert.equal(daemonHelp.code, 0);
    assert.match(daemonHelp.stdout, /--data-root/);
  });

  test('client commands without a daemon: connect error, exit 1', async () => {
    const r = await run(SKIFF, ['-H', 'unix:///nonexistent/skiff.sock', 'info']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Cannot connect to the skiff daemon at unix:\/\/\/nonexistent\/skiff.sock/);
    const v = await run(SKIFF, ['-H', 'unix:///nonexistent/skiff.sock', 'version']);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /^Client:\n Version:/);
  });
});
