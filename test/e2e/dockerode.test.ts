// balena-supervisor's conversation with the engine, spoken by dockerode (the
// client the supervisor uses, with its defaults: unversioned paths, options
// echoed into query and body, followProgress, demuxStream, non-hijack attach).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { busyboxEntries } from '../helpers/debian.js';
import { makeLayer, startRegistry, type TestRegistry } from '../helpers/registry.js';

const BUSYBOX = '/bin/busybox';

interface ProgressEvent {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

interface DockerodeError extends Error {
  statusCode?: number;
  reason?: string;
  json?: { message?: string } | null;
}

interface EngineEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** docker.pull + modem.followProgress, the way docker-progress drives it. */
async function pullWithProgress(docker: Docker, ref: string): Promise<{ err: Error | null; output: ProgressEvent[]; events: ProgressEvent[] }> {
  const stream = (await docker.pull(ref)) as NodeJS.ReadableStream;
  const events: ProgressEvent[] = [];
  return new Promise((resolve) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: ProgressEvent[]) => resolve({ err, output: output ?? [], events }),
      (ev: ProgressEvent) => events.push(ev),
    );
  });
}

/** Rejections from dockerode carry statusCode/reason/json. */
async function rejection(p: Promise<unknown>): Promise<DockerodeError> {
  try {
    await p;
  } catch (err) {
    return err as DockerodeError;
  }
  assert.fail('expected the call to reject');
}

function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('dockerode (balena-supervisor sequence)', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  let docker: Docker;
  let image: string;

  before(async () => {
    reg = await startRegistry();
    const layer = await makeLayer(busyboxEntries(readFileSync(BUSYBOX)));
    await reg.pushImage('test/busybox', 'latest', [layer], { os: 'linux', architecture: 'amd64' }, { config: { cmd: ['sh'] } });
    image = `${reg.host}/test/busybox:latest`;
    d = await startDaemon();
    docker = new Docker({ socketPath: d.socket });
  });
  after(async () => {
    if (d && docker) {
      for (const c of await docker.listContainers({ all: true }).catch(() => [])) {
        await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      }
    }
    d?.cleanup();
    await reg?.stop();
  });

  test('version, ping, info', async () => {
    const v = await docker.version();
    assert.equal((v as unknown as { Engine?: string }).Engine, 'balena-engine');
    assert.equal(v.ApiVersion, '1.41');
    const pong = await docker.ping();
    assert.equal(Buffer.isBuffer(pong) ? pong.toString() : String(pong), 'OK');
    const info = await docker.info();
    assert.equal(typeof info.Containers, 'number');
    assert.equal(info.Driver, 'overlay2');
  });

  test('pull with followProgress: progress with balena "Total" events, then image inspect', async () => {
    const { err, output, events } = await pullWithProgress(docker, image);
    assert.equal(err, null);
    assert.ok(events.length > 0, 'progress events');
    assert.deepEqual(events, output);
    assert.ok(!output.some((e) => e.error), JSON.stringify(output));
    const total = output.filter((e) => e.id === 'Total');
    assert.ok(total.length > 0, `no {"id":"Total"} events in ${JSON.stringify(output)}`);
    // docker-progress (balena engines) computes the percentage from these alone: current/total, reaching 100.
    for (const e of total) {
      assert.equal(typeof e.progressDetail?.current, 'number', JSON.stringify(e));
      assert.equal(typeof e.progressDetail?.total, 'number', JSON.stringify(e));
    }
    const last = total.at(-1)?.progressDetail;
    assert.ok(last && last.total! > 0 && last.current === last.total, JSON.stringify(total));
    const digest = output.map((e) => /^Digest: (sha256:[0-9a-f]{64})$/.exec(e.status ?? '')?.[1]).find(Boolean);
    assert.ok(digest, JSON.stringify(output));
    assert.equal(output.at(-1)?.status, `Status: Downloaded newer image for ${image}`);
    const inspected = await docker.getImage(image).inspect();
    assert.match(inspected.Id, /^sha256:[0-9a-f]{64}$/);
    assert.ok(inspected.RepoTags.includes(image), JSON.stringify(inspected.RepoTags));
    assert.deepEqual(inspected.RepoDigests, [`${reg.host}/test/busybox@${digest}`]);
    assert.deepEqual(inspected.Config.Cmd, ['sh']);

    // Again as the supervisor sends it: with X-Registry-Auth (device credentials; the registry asks for none).
    const again = await new Promise<{ err: Error | null; output: ProgressEvent[] }>((resolve, reject) => {
      docker.pull(image, { authconfig: { username: 'd_0123456789abcdef', password: 'device-api-key', serveraddress: reg.host } }, (err: Error | null, stream?: NodeJS.ReadableStream) => {
        if (err || !stream) return reject(err ?? new Error('no stream'));
        docker.modem.followProgress(stream, (e: Error | null, out: ProgressEvent[]) => resolve({ err: e, output: out }));
      });
    });
    assert.equal(again.err, null);
    assert.equal(again.output.at(-1)?.status, `Status: Image is up to date for ${image}`, JSON.stringify(again.output));
    assert.ok(again.output.some((e) => e.status === `Digest: ${digest}`));
  });

  test('pull of a missing tag: an error, not a silent success', async () => {
    let streamErr: DockerodeError | undefined;
    let result: Awaited<ReturnType<typeof pullWithProgress>> | undefined;
    try {
      result = await pullWithProgress(docker, `${reg.host}/test/busybox:nope`);
    } catch (err) {
      streamErr = err as DockerodeError; // the HTTP status came back before any stream
    }
    if (streamErr) {
      // For streams docker-modem leaves json null and puts the body's message into the Error's message.
      assert.equal(streamErr.statusCode, 404, String(streamErr));
      assert.match(streamErr.message, /manifest unknown|not found/i);
    } else {
      assert.ok(result);
      const failed = result.err ?? result.output.find((e) => e.error);
      assert.ok(failed, `pull of a missing tag finished without an error: ${JSON.stringify(result.output)}`);
    }
  });

  let id = '';

  test('create (supervisor body), start, inspect, list by label, logs', async () => {
    const labels = { 'io.balena.supervised': 'true', 'io.balena.app-id': '1', 'io.balena.service-name': 'main', 'io.balena.service-id': '2', 'io.balena.app-uuid': 'abc' };
    // The fields Service.toDockerContainer sends (balena-engine.md §4) that apply to a host-network service.
    const createBody: Docker.ContainerCreateOptions = {
      name: 'main_1_1',
      Image: image,
      Cmd: ['sh', '-c', 'echo hello; sleep 300'],
      Tty: false,
      Env: ['A=1', 'BALENA_DEVICE_NAME_AT_INIT=dev'],
      Labels: labels,
      ExposedPorts: {},
      Volumes: {},
      StopSignal: 'SIGTERM',
      StopTimeout: 1,
      WorkingDir: '',
      User: '',
      Domainname: '',
      HostConfig: {
        RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
        NetworkMode: 'host',
        Binds: [],
        CapAdd: [],
        CapDrop: [],
        Devices: [],
        Dns: [],
        DnsOptions: [],
        DnsSearch: [],
        ExtraHosts: [],
        GroupAdd: [],
        SecurityOpt: [],
        Sysctls: {},
        Ulimits: [],
        Tmpfs: {},
        Privileged: false,
        ReadonlyRootfs: false,
        Init: false,
        OomKillDisable: false,
        OomScoreAdj: 0,
        CpuShares: 0,
        CpuQuota: 0,
        NanoCpus: 0,
        Memory: 0,
        MemoryReservation: 0,
        ShmSize: 67108864,
        IpcMode: 'shareable',
        PidMode: '',
        PidsLimit: 0,
        UsernsMode: '',
        CgroupParent: '',
        CpusetCpus: '',
        PortBindings: {},
        Mounts: [],
      },
      NetworkingConfig: { EndpointsConfig: {} },
      Healthcheck: { Test: ['NONE'] },
    };
    const container = await docker.createContainer(createBody);
    id = container.id;
    assert.match(id, /^[0-9a-f]{64}$/);
    await container.start();
    const info = await container.inspect();
    assert.equal(info.Name, '/main_1_1');
    assert.equal(info.State.Running, true);
    assert.equal(info.State.Status, 'running');
    for (const [k, v] of Object.entries(labels)) assert.equal(info.Config.Labels[k], v, k);
    assert.ok(info.Config.Env.includes('A=1'), JSON.stringify(info.Config.Env));
    assert.equal(info.HostConfig.NetworkMode, 'host');
    // The supervisor rebuilds its service from this inspect and recreates the container on any difference.
    const sentHost = createBody.HostConfig as Record<string, unknown>;
    const gotHost = info.HostConfig as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(sentHost)) assert.deepEqual(gotHost[k], v, `HostConfig.${k}`);
    const gotConfig = info.Config as unknown as Record<string, unknown>;
    for (const k of ['Cmd', 'Tty', 'StopSignal', 'StopTimeout', 'WorkingDir', 'User', 'Domainname', 'Healthcheck'] as const) {
      assert.deepEqual(gotConfig[k], (createBody as Record<string, unknown>)[k], `Config.${k}`);
    }
    assert.equal(info.Config.Image, image);

    const byObject = await docker.listContainers({ all: true, filters: { label: ['io.balena.supervised'] } });
    assert.deepEqual(byObject.map((c) => c.Id), [id]);
    assert.deepEqual(byObject[0]?.Names, ['/main_1_1']);
    assert.equal(byObject[0]?.State, 'running');
    assert.equal(byObject[0]?.Labels['io.balena.app-id'], '1');
    const byString = await docker.listContainers({ all: true, filters: JSON.stringify({ label: ['io.balena.supervised'] }) });
    assert.deepEqual(byString.map((c) => c.Id), [id]);
    const byMapForm = await docker.listContainers({ all: true, filters: JSON.stringify({ label: { 'io.balena.supervised': true } }) });
    assert.deepEqual(byMapForm.map((c) => c.Id), [id]);
    const byValue = await docker.listContainers({ all: true, filters: JSON.stringify({ label: ['io.balena.supervised', 'io.balena.app-id=1', 'io.balena.service-name=main'] }) });
    assert.deepEqual(byValue.map((c) => c.Id), [id]);
    assert.deepEqual(await docker.listContainers({ all: true, filters: { label: ['io.balena.app-id=2'] } }), []);
    assert.deepEqual(await docker.listContainers({ all: true, filters: { label: ['io.resin.supervised'] } }), []);

    let logs: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 50; i++) {
      logs = (await container.logs({ stdout: true, stderr: true, follow: false, timestamps: true })) as unknown as Buffer;
      if (logs.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(Buffer.isBuffer(logs), `logs is ${typeof logs}`);
    assert.equal(logs[0], 1, 'a stdout stdcopy frame');
    const out = collector();
    const err = collector();
    const frames = new PassThrough();
    const demuxed = new Promise<void>((resolve) => frames.on('end', resolve));
    docker.modem.demuxStream(frames, out.stream, err.stream);
    frames.end(logs);
    await demuxed;
    assert.match(out.text(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z hello\n$/);
    assert.equal(err.text(), '');
  });

  test('events while the supervisor stops and removes the container', async () => {
    assert.ok(id, 'the container of the previous test');
    const stream = (await docker.getEvents({ filters: { type: ['container'] } })) as NodeJS.ReadableStream & { destroy(): void };
    const events: EngineEvent[] = [];
    let buf = '';
    let wake: () => void = () => undefined;
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) events.push(JSON.parse(line) as EngineEvent);
      }
      wake();
    });
    const waitFor = async (pred: () => boolean, ms = 15_000): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) assert.fail(`timed out; events so far: ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 200);
        });
      }
    };
    try {
      const container = docker.getContainer(id);
      // No t: the engine uses the StopTimeout given at create (sh as pid 1 ignores SIGTERM: SIGKILL after 1 s).
      const t0 = Date.now();
      await container.stop();
      assert.ok(Date.now() - t0 < 5000, `stop took ${Date.now() - t0} ms with StopTimeout 1`);
      await container.remove({ v: true });
      await waitFor(() => events.some((e) => e.Action === 'destroy'));
      const mine = events.filter((e) => e.Actor?.ID === id);
      assert.ok(mine.every((e) => e.Type === 'container' && e.Actor?.Attributes?.name === 'main_1_1'), JSON.stringify(mine));
      assert.ok(mine.every((e) => e.id === id && e.status === e.Action), 'legacy id/status fields');
      assert.ok(events.every((e) => e.Type === 'container'), 'type filter');
      const actions = mine.map((e) => e.Action);
      assert.ok(actions.some((a) => a === 'die' || a === 'kill' || a === 'stop'), actions.join(','));
      assert.ok(actions.includes('die'), actions.join(','));
      assert.equal(actions.at(-1), 'destroy', actions.join(','));
      assert.equal(mine.find((e) => e.Action === 'die')?.Actor?.Attributes?.['io.balena.app-id'], '1', 'labels as attributes');
    } finally {
      stream.destroy();
    }
    assert.equal((await rejection(docker.getContainer(id).inspect())).statusCode, 404);
  });

  test('docker.run: create, non-hijack attach, start, wait, AutoRemove', async () => {
    const out = collector();
    const [data, container] = (await docker.run(image, ['echo', 'ran'], out.stream, { HostConfig: { AutoRemove: true } })) as [{ StatusCode: number }, Docker.Container];
    assert.equal(data.StatusCode, 0);
    // docker.run creates with Tty: true (its default): raw pty output, so \r\n.
    assert.equal(out.text(), 'ran\r\n');
    const out2 = collector();
    const err2 = collector();
    const [data2] = (await docker.run(image, ['sh', '-c', 'echo out; echo err >&2; exit 3'], [out2.stream, err2.stream], { Tty: false, HostConfig: { AutoRemove: true } })) as [{ StatusCode: number }, Docker.Container];
    assert.equal(data2.StatusCode, 3);
    assert.equal(out2.text(), 'out\n');
    assert.equal(err2.text(), 'err\n');
    // AutoRemove: gone soon after the exit.
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      const e = await rejection(container.inspect()).catch(() => undefined);
      gone = e?.statusCode === 404;
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(gone, 'the AutoRemove container is removed');
  });

  test('status codes dockerode relies on: 304 start/stop, 404 with message', async () => {
    const c = await docker.createContainer({ Image: image, Cmd: ['sleep', '300'], name: 'codes' });
    await c.start();
    const started = await rejection(c.start());
    assert.equal(started.statusCode, 304);
    assert.equal(started.reason, 'container already started');
    assert.match(started.message, /container already started/);
    await c.stop({ t: 1 });
    const stopped = await rejection(c.stop());
    assert.equal(stopped.statusCode, 304);
    assert.equal(stopped.reason, 'container already stopped');
    await c.remove();
    const missing = await rejection(docker.getContainer('nope').inspect());
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json?.message, 'No such container: nope');
    assert.equal(missing.reason, 'no such container');
  });

  /** docker.run with Tty (dockerode's default) and AutoRemove: the exit code and the raw output. */
  async function runOutput(cmd: string[], hostConfig: Docker.HostConfig): Promise<{ code: number; out: string }> {
    const out = collector();
    const [data] = (await docker.run(image, cmd, out.stream, { HostConfig: { AutoRemove: true, ...hostConfig } })) as [{ StatusCode: number }, Docker.Container];
    return { code: data.StatusCode, out: out.text().replace(/\r\n/g, '\n') };
  }

  test('Dns, DnsSearch, DnsOptions and ExtraHosts of the create body reach the container', async () => {
    for (const NetworkMode of ['host', 'default']) {
      const r = await runOutput(['sh', '-c', 'cat /etc/resolv.conf /etc/hosts'], { NetworkMode, Dns: ['192.0.2.53'], DnsSearch: ['example.org'], DnsOptions: ['ndots:2'], ExtraHosts: ['extra.example:192.0.2.7'] });
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^nameserver 192\.0\.2\.53$/m, `${NetworkMode}: ${r.out}`);
      assert.match(r.out, /^search example\.org$/m, `${NetworkMode}: ${r.out}`);
      assert.match(r.out, /^options ndots:2$/m, `${NetworkMode}: ${r.out}`);
      assert.match(r.out, /^192\.0\.2\.7\s+extra\.example$/m, `${NetworkMode}: ${r.out}`);
    }
  });

  test('Privileged: true gives the container the host\'s devices', async () => {
    const hostDevices = readdirSync('/dev').filter((n) => {
      const st = statSync(`/dev/${n}`, { throwIfNoEntry: false });
      return st && (st.isCharacterDevice() || st.isBlockDevice()) && !['console', 'tty', 'ptmx'].includes(n);
    });
    const r = await runOutput(['ls', '-1', '/dev'], { Privileged: true });
    assert.equal(r.code, 0, r.out);
    const inside = new Set(r.out.split('\n'));
    assert.deepEqual(hostDevices.filter((n) => !inside.has(n)), []);
  });
});
