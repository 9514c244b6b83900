// Registry faults and registry auth, end to end: the built daemon driven by
// the real docker CLI, pulling from a real docker-registry through the fault
// proxy (5xx, truncated bodies, stalls, a server that ignores Range), from a
// registry with htpasswd (Basic) auth, and through a Bearer token server.
//
// The stall case: the registry client's stall detector (readTimeoutMs, 30 s)
// has no flag or environment variable, so a true stall would take 30 s. The
// test uses a stall that ends in a connection reset after a short silence
// (test/helpers/stallproxy.ts) and checks the resume that follows.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertCheckClean, assertOnlyCommittedLayers, parseResponse, rawRequest, run, startDaemon, type RunResult, type TestDaemon } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faultproxy.js';
import { makeLayer, pseudoRandom, startRegistry, type Layer, type PushedImage, type TestRegistry } from '../helpers/registry.js';
import { startStallProxy, type StallProxy } from '../helpers/stallproxy.js';
import { startTokenServer, type TokenServer } from '../helpers/tokenserver.js';

const MAX_ATTEMPTS = 5;

describe('pulls through registry faults and registry auth', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let d: TestDaemon;
  /** A private DOCKER_CONFIG: `docker login` must not touch the host's (or another test file's) config. */
  let dockerConfig: string;

  const dockerc = (args: string[], opts: { input?: string; timeout?: number } = {}): Promise<RunResult> =>
    run('docker', ['-H', d.host, ...args], { env: { ...process.env, DOCKER_CONFIG: dockerConfig }, input: opts.input, timeout: opts.timeout ?? 45_000 });

  /** A fresh image (its own layer bytes, so nothing is "Already exists") in `repo`. */
  let seq = 0;
  async function freshImage(target: TestRegistry, repo: string, tag: string | undefined, bigSize = 600_000): Promise<{ img: PushedImage; big: Layer; small: Layer }> {
    seq++;
    const small = await makeLayer([{ name: 'etc/', type: 'directory' }, { name: `etc/id-${seq}`, data: `image ${seq}\n` }]);
    const big = await makeLayer([{ name: 'data/', type: 'directory' }, { name: 'data/blob.bin', data: pseudoRandom(bigSize, `faults-${seq}`) }]);
    const img = await target.pushImage(repo, tag, [small, big]);
    return { img, big, small };
  }

  const blobGets = (from: number, digest: string) => proxy.log.slice(from).filter((e) => e.method === 'GET' && e.url.includes(`/blobs/${digest}`));

  before(async () => {
    dockerConfig = mkdtempSync(join(tmpdir(), 'skiff-faults-docker-config-'));
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    d = await startDaemon({ args: ['--max-download-attempts', String(MAX_ATTEMPTS)] });
  });
  after(async () => {
    d?.cleanup();
    await proxy?.stop();
    await reg?.stop();
    rmSync(dockerConfig, { recursive: true, force: true });
  });

  describe('5xx answers', () => {
    let img: PushedImage;
    let big: Layer;
    before(async () => {
      ({ img, big } = await freshImage(reg, 'faults/five', 'v1'));
    });

    test('500 on every attempt: the pull fails after max attempts and stores nothing', async () => {
      proxy.addFault({ method: 'GET', match: new RegExp(`/blobs/${big.digest}`), fault: { kind: 'status', status: 500 }, times: 10 });
      const from = proxy.log.length;
      const r = await dockerc(['pull', `${proxy.host}/faults/five:v1`]);
      proxy.clearFaults();
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /Retrying in \d+ seconds?/);
      assert.match(r.stderr, new RegExp(`download failed after ${MAX_ATTEMPTS} attempts: .*500 Internal Server Error`));
      assert.equal(blobGets(from, big.digest).length, MAX_ATTEMPTS);
      assert.equal((await dockerc(['images', '-q'])).stdout.trim(), '');
      assertOnlyCommittedLayers(d);
    });

    test('500 twice, then the blob: the pull retries and succeeds', async () => {
      proxy.addFault({ method: 'GET', match: new RegExp(`/blobs/${big.digest}`), fault: { kind: 'status', status: 500 }, times: 2 });
      const from = proxy.log.length;
      const r = await dockerc(['pull', `${proxy.host}/faults/five:v1`]);
      proxy.clearFaults();
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Retrying in 1 second/);
      assert.match(r.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
      assert.deepEqual(blobGets(from, big.digest).map((e) => e.status), [500, 500, 200]);
      const ins = JSON.parse((await dockerc(['image', 'inspect', `${proxy.host}/faults/five:v1`])).stdout)[0];
      assert.equal(ins.Id, img.imageId);
      await assertCheckClean(d);
      assertOnlyCommittedLayers(d);
    });
  });

  test('rmi of an image sharing a layer while a pull waits to retry: the pull keeps that layer and completes', async () => {
    seq++;
    const shared = await makeLayer([{ name: 'shared/', type: 'directory' }, { name: 'shared/lib', data: pseudoRandom(200_000, `shared-${seq}`) }]);
    const own = await makeLayer([{ name: 'own-a', data: `a ${seq}\n` }]);
    const big = await makeLayer([{ name: 'own-b', data: pseudoRandom(400_000, `own-b-${seq}`) }]);
    const a = await reg.pushImage('faults/share-a', 'v1', [shared, own]);
    const b = await reg.pushImage('faults/share-b', 'v1', [shared, big]);
    assert.equal((await dockerc(['pull', `${proxy.host}/faults/share-a:v1`])).code, 0);
    proxy.addFault({ method: 'GET', match: new RegExp(`/blobs/${big.digest}`), fault: { kind: 'status', status: 500 }, times: 1 });
    const from = proxy.log.length;
    const pull = dockerc(['pull', `${proxy.host}/faults/share-b:v1`]);
    // The pull found the shared layer here and got its 500: it now waits a second before the retry.
    for (let t = 0; !blobGets(from, big.digest).some((e) => e.status === 500); t++) {
      assert.ok(t < 500, 'the blob was asked for');
      await new Promise((r) => setTimeout(r, 10));
    }
    const rmi = await dockerc(['rmi', `${proxy.host}/faults/share-a:v1`]);
    assert.equal(rmi.code, 0, rmi.stderr);
    assert.match(rmi.stdout, new RegExp(`Deleted: ${a.imageId}`));
    assert.doesNotMatch(rmi.stdout, new RegExp(`Deleted: ${shared.diffId}`), 'the shared layer stays: the pull holds it');
    const r = await pull;
    proxy.clearFaults();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Retrying in 1 second/);
    const ins = JSON.parse((await dockerc(['image', 'inspect', `${proxy.host}/faults/share-b:v1`])).stdout)[0];
    assert.equal(ins.Id, b.imageId);
    await assertCheckClean(d);
    assertOnlyCommittedLayers(d);
  });

  test('a truncated body (Content-Length promised more) resumes with a Range request', async () => {
    const { img, big } = await freshImage(reg, 'faults/trunc', 'v1');
    proxy.addFault({ method: 'GET', match: new RegExp(`/blobs/${big.digest}`), fault: { kind: 'truncate', after: 250_000 } });
    const from = proxy.log.length;
    const r = await dockerc(['pull', `${proxy.host}/faults/trunc:v1`]);
    proxy.clearFaults();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const gets = blobGets(from, big.digest);
    assert.equal(gets.length, 2, JSON.stringify(gets.map((g) => [g.status, g.fault, g.headers.range])));
    assert.equal(gets[0]?.fault, 'truncate');
    assert.equal(gets[0]?.headers.range, undefined);
    const m = /^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range));
    assert.ok(m, `resumed with a Range header: ${String(gets[1]?.headers.range)}`);
    const offset = Number(m[1]);
    assert.ok(offset > 0 && offset <= 250_000, `resume offset ${offset}`);
    assert.equal(gets[1]?.status, 206);
    const ins = JSON.parse((await dockerc(['image', 'inspect', `${proxy.host}/faults/trunc:v1`])).stdout)[0];
    assert.equal(ins.Id, img.imageId);
    await assertCheckClean(d);
  });

  describe('a stalled connection', () => {
    let stall: StallProxy;
    before(async () => {
      stall = await startStallProxy(proxy.url);
    });
    after(async () => {
      await stall?.stop();
    });

    test('headers and some bytes, silence, then a reset: the pull resumes where it stopped', async () => {
      const { img, big } = await freshImage(reg, 'faults/stall', 'v1');
      stall.addStall({ match: new RegExp(`/blobs/${big.digest}`), after: 200_000, stallMs: 2_000 });
      const from = proxy.log.length;
      const started = Date.now();
      const r = await dockerc(['pull', `${stall.host}/faults/stall:v1`]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(stall.stalls.length, 1);
      assert.match(r.stdout, /Retrying in 1 second/);
      assert.ok(Date.now() - started >= 2_000, 'the pull waited through the stall');
      const gets = blobGets(from, big.digest);
      assert.equal(gets.length, 2);
      const m = /^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range));
      assert.ok(m, `resumed with a Range header: ${String(gets[1]?.headers.range)}`);
      assert.ok(Number(m[1]) > 0 && Number(m[1]) <= 200_000, `resume offset ${m[1]}`);
      const ins = JSON.parse((await dockerc(['image', 'inspect', `${stall.host}/faults/stall:v1`])).stdout)[0];
      assert.equal(ins.Id, img.imageId);
      await assertCheckClean(d);
    });
  });

  test('a registry that ignores Range on the resumed request (200): the bytes already had are skipped', async () => {
    const { img, big } = await freshImage(reg, 'faults/norange', 'v1');
    const match = new RegExp(`/blobs/${big.digest}`);
    proxy.addFault({ method: 'GET', match, fault: { kind: 'truncate', after: 300_000 } });
    proxy.addFault({ method: 'GET', match, fault: { kind: 'ignoreRange' } });
    const from = proxy.log.length;
    const r = await dockerc(['pull', `${proxy.host}/faults/norange:v1`]);
    proxy.clearFaults();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const gets = blobGets(from, big.digest);
    assert.equal(gets.length, 2);
    assert.match(String(gets[1]?.headers.range), /^bytes=\d+-$/);
    assert.equal(gets[1]?.fault, 'ignoreRange');
    assert.equal(gets[1]?.status, 200);
    const ins = JSON.parse((await dockerc(['image', 'inspect', `${proxy.host}/faults/norange:v1`])).stdout)[0];
    assert.equal(ins.Id, img.imageId);
    assert.deepEqual(ins.RootFS.Layers, img.layers.map((l) => l.diffId));
    await assertCheckClean(d);
  });

  describe('Basic auth (htpasswd registry)', () => {
    let secure: TestRegistry;
    let img: PushedImage;
    before(async () => {
      secure = await startRegistry({ htpasswd: { username: 'skiffuser', password: 's3cret-pass' } });
      ({ img } = await freshImage(secure, 'private/app', 'v1', 50_000));
    });
    after(async () => {
      await secure?.stop();
    });

    test('pull without login fails; wrong password fails; login then pull works', async () => {
      const name = `${secure.host}/private/app:v1`;
      const anon = await dockerc(['pull', name]);
      assert.equal(anon.code, 1, anon.stdout + anon.stderr);
      assert.match(anon.stderr, /Error response from daemon: Get "http:\/\/127\.0\.0\.1:\d+\/v2\/private\/app\/manifests\/v1": no basic auth credentials/);
      // A 500 like dockerd's, not a 401: on a 401 the CLI would prompt "Login prior to pull: Username:".
      assert.doesNotMatch(anon.stdout + anon.stderr, /Username|Login prior to pull/);
      const raw = parseResponse(await rawRequest(d.socket, `POST /v1.41/images/create?fromImage=${encodeURIComponent(`${secure.host}/private/app`)}&tag=v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`));
      assert.equal(raw.status, 500);
      assert.match(JSON.parse(raw.body).message, /no basic auth credentials$/);

      const wrong = await dockerc(['login', secure.host, '-u', 'skiffuser', '--password-stdin'], { input: 'not-the-password\n' });
      assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
      assert.match(wrong.stderr, /Error response from daemon: Get "http:\/\/127\.0\.0\.1:\d+\/v2\/": unauthorized: incorrect username or password/);

      const login = await dockerc(['login', secure.host, '-u', 'skiffuser', '--password-stdin'], { input: 's3cret-pass\n' });
      assert.equal(login.code, 0, login.stdout + login.stderr);
      assert.match(login.stdout, /Login Succeeded/);
      const cfg = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8')) as { auths?: Record<string, unknown> };
      assert.ok(cfg.auths?.[secure.host], 'the CLI stored the credentials in the private DOCKER_CONFIG');

      const p = await dockerc(['pull', name]);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.match(p.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
      const ins = JSON.parse((await dockerc(['image', 'inspect', name])).stdout)[0];
      assert.equal(ins.Id, img.imageId);
    });
  });

  describe('Bearer tokens through a token server', () => {
    let anonTs: TokenServer;
    let anonProxy: FaultProxy;
    let loginTs: TokenServer;
    let loginProxy: FaultProxy;
    before(async () => {
      anonTs = await startTokenServer({ service: 'anon-registry' });
      anonProxy = await startFaultProxy(reg.url, { tokenServer: anonTs });
      loginTs = await startTokenServer({ service: 'login-registry', requireLogin: true, users: { alice: 'wonderland' } });
      loginProxy = await startFaultProxy(reg.url, { tokenServer: loginTs });
    });
    after(async () => {
      await anonProxy?.stop();
      await anonTs?.stop();
      await loginProxy?.stop();
      await loginTs?.stop();
    });

    test('anonymous tokens: the pull works', async () => {
      const { img } = await freshImage(reg, 'bearer/open', 'v1', 50_000);
      const r = await dockerc(['pull', `${anonProxy.host}/bearer/open:v1`]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
      const reqs = anonTs.requests.filter((q) => q.scopes.includes('repository:bearer/open:pull'));
      assert.ok(reqs.length >= 1, JSON.stringify(anonTs.requests));
      assert.ok(reqs.every((q) => q.grant === 'anonymous' && q.authorization === undefined && q.service === 'anon-registry' && q.status === 200));
      assert.ok(anonProxy.log.some((e) => e.fault === 'auth' && e.status === 401), 'the proxy challenged first');
      assert.ok(anonProxy.log.some((e) => String(e.headers.authorization).startsWith('Bearer ') && e.url.includes('/manifests/')));
    });

    test('credentials required: pull fails anonymously, docker login + pull work, the token server saw the credentials', async () => {
      const { img } = await freshImage(reg, 'bearer/closed', 'v1', 50_000);
      const name = `${loginProxy.host}/bearer/closed:v1`;
      const anon = await dockerc(['pull', name]);
      assert.equal(anon.code, 1, anon.stdout + anon.stderr);
      assert.match(anon.stderr, /Error response from daemon: Get "[^"]*\/v2\/bearer\/closed\/manifests\/v1": unauthorized: /);
      assert.doesNotMatch(anon.stdout + anon.stderr, /Username|Login prior to pull/);
      assert.ok(loginTs.requests.some((q) => q.grant === 'anonymous' && q.status === 401), 'the token server refused the anonymous request');

      const wrong = await dockerc(['login', loginProxy.host, '-u', 'alice', '--password-stdin'], { input: 'mad-hatter\n' });
      assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
      assert.match(wrong.stderr, /Error response from daemon: Get "[^"]*\/v2\/": unauthorized: incorrect username or password/);

      const before = loginTs.requests.length;
      const login = await dockerc(['login', loginProxy.host, '-u', 'alice', '--password-stdin'], { input: 'wonderland\n' });
      assert.equal(login.code, 0, login.stdout + login.stderr);
      assert.match(login.stdout, /Login Succeeded/);
      const loginReqs = loginTs.requests.slice(before);
      assert.ok(loginReqs.some((q) => q.grant === 'basic' && q.account === 'alice' && q.status === 200), JSON.stringify(loginReqs));

      const mark = loginTs.requests.length;
      const p = await dockerc(['pull', name]);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.match(p.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
      const pullReqs = loginTs.requests.slice(mark);
      assert.ok(pullReqs.length >= 1);
      const expected = `Basic ${Buffer.from('alice:wonderland').toString('base64')}`;
      assert.ok(
        pullReqs.every((q) => q.authorization === expected && q.account === 'alice' && q.status === 200 && q.scopes.includes('repository:bearer/closed:pull')),
        JSON.stringify(pullReqs),
      );
      const ins = JSON.parse((await dockerc(['image', 'inspect', name])).stdout)[0];
      assert.equal(ins.Id, img.imageId);
    });
  });

  test('pull by digest; an unknown digest is a not-found error', async () => {
    const { img } = await freshImage(reg, 'faults/bydigest', undefined, 50_000);
    const name = `${reg.host}/faults/bydigest@${img.manifestDigest}`;
    const r = await dockerc(['pull', name]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`Digest: ${img.manifestDigest}`));
    const ins = JSON.parse((await dockerc(['image', 'inspect', name])).stdout)[0];
    assert.equal(ins.Id, img.imageId);
    assert.deepEqual(ins.RepoTags, []);
    assert.deepEqual(ins.RepoDigests, [name]);

    const missing = `${reg.host}/faults/bydigest@sha256:${'0'.repeat(64)}`;
    const m = await dockerc(['pull', missing]);
    assert.equal(m.code, 1, m.stdout + m.stderr);
    assert.match(m.stderr, new RegExp(`Error response from daemon: manifest for ${missing.replace(/[.]/g, '\\.')} not found: manifest unknown`));
  });
});
