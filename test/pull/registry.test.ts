// RegistryClient against Debian's real docker-registry (distribution 2.8),
// directly and through the fault proxy.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { NotFound, SkiffError, SystemError, Unavailable } from '../../src/errors.js';
import { RegistryClient, isInsecureRegistry, type RegistryClientOptions } from '../../src/pull/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faultproxy.js';
import { freePort, makeLayer, MT, pseudoRandom, sha256, startRegistry, type PushedImage, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
let proxy: FaultProxy;
let image: PushedImage;
let arm: PushedImage;
let index: { digest: string; body: Buffer };
let big: Buffer; // the big layer blob
let bigDigest: string;
const clients: RegistryClient[] = [];

function client(domain: string, path = 'test/app', opts: Partial<RegistryClientOptions> = {}): RegistryClient {
  const c = new RegistryClient({ domain, path }, { insecureRegistries: [], mirrors: [], userAgent: 'skiff-test/0', readTimeoutMs: 5000, ...opts });
  clients.push(c);
  return c;
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Consumes a stream, resolving with the bytes or rejecting with its error (and the bytes received before). */
function drain(body: Readable): Promise<{ data: Buffer; error: unknown }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('end', () => resolve({ data: Buffer.concat(chunks), error: undefined }));
    body.on('error', (error) => resolve({ data: Buffer.concat(chunks), error }));
  });
}

before(async () => {
  reg = await startRegistry();
  const small = await makeLayer([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/hostname', data: 'skiff\n' },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
  ]);
  const bigLayer = await makeLayer([{ name: 'data.bin', data: pseudoRandom(600 * 1024) }]);
  big = bigLayer.gz;
  bigDigest = bigLayer.digest;
  image = await reg.pushImage('test/app', 'v1', [small, bigLayer]);
  arm = await reg.pushImage('test/app', undefined, [small], { os: 'linux', architecture: 'arm64', variant: 'v8' }, { oci: true });
  index = await reg.pushIndex('test/app', 'multi', [image, arm], { oci: true });
  proxy = await startFaultProxy(reg.url);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await proxy?.stop();
  await reg?.stop();
});

test('manifest by tag: media type, digest and body', async () => {
  const m = await client(reg.host).getManifest('v1');
  assert.equal(m.mediaType, MT.dockerManifest);
  assert.equal(m.digest, image.manifestDigest);
  assert.deepEqual(m.body, image.manifest);
});

test('manifest by digest is verified; an OCI index by tag', async () => {
  const c = client(reg.host);
  const m = await c.getManifest(image.manifestDigest);
  assert.equal(m.digest, image.manifestDigest);
  assert.deepEqual(m.body, image.manifest);
  const i = await c.getManifest('multi');
  assert.equal(i.mediaType, MT.ociIndex);
  assert.equal(i.digest, index.digest);
  const a = await c.getManifest(arm.manifestDigest);
  assert.equal(a.mediaType, MT.ociManifest);
});

test('a manifest whose bytes do not match the requested digest is refused', async () => {
  proxy.addFault({ match: /\/manifests\/sha256:/, fault: { kind: 'flip', at: 10 } });
  await assert.rejects(client(proxy.host).getManifest(image.manifestDigest), (err: unknown) => {
    assert.ok(err instanceof SystemError);
    assert.equal(err.message, `manifest verification failed for digest ${image.manifestDigest}`);
    return true;
  });
});

test('unknown tag, digest and repository: Docker’s NotFound messages', async () => {
  const c = client(reg.host);
  await assert.rejects(c.getManifest('nope'), (err: unknown) => {
    assert.ok(err instanceof NotFound);
    assert.equal(err.message, `manifest for ${reg.host}/test/app:nope not found: manifest unknown: manifest unknown`);
    return true;
  });
  const d = sha256('nothing');
  await assert.rejects(c.getManifest(d), (err: unknown) => {
    assert.ok(err instanceof NotFound);
    assert.match(err.message, new RegExp(`^manifest for ${reg.host}/test/app@${d} not found: manifest unknown: `));
    return true;
  });
  // distribution 2.8 says MANIFEST_UNKNOWN for a repository it does not have.
  await assert.rejects(client(reg.host, 'test/missing').getManifest('latest'), {
    name: 'NotFound',
    message: `manifest for ${reg.host}/test/missing:latest not found: manifest unknown: manifest unknown`,
  });
  await assert.rejects(c.openBlob(d, 0), (err: unknown) => {
    assert.ok(err instanceof NotFound);
    assert.equal(err.message, `blob ${d} not found: blob unknown: blob unknown to registry`);
    return true;
  });
  await assert.rejects(c.getManifest('bad tag!'), { name: 'InvalidParameter' });
});

test('a 404 without an error body is still "manifest unknown"', async () => {
  proxy.addFault({ match: /\/manifests\/v1$/, fault: { kind: 'status', status: 404, body: 'nothing here' } });
  await assert.rejects(client(proxy.host).getManifest('v1'), {
    name: 'NotFound',
    message: `manifest for ${proxy.host}/test/app:v1 not found: manifest unknown: manifest unknown`,
  });
});

test('NAME_UNKNOWN and DENIED (403): Docker’s other NotFound messages', async () => {
  const json = { 'content-type': 'application/json' };
  proxy.addFault({
    match: /\/manifests\//,
    fault: { kind: 'status', status: 404, headers: json, body: JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }) },
  });
  await assert.rejects(client(proxy.host).getManifest('v1'), {
    name: 'NotFound',
    message: `repository ${proxy.host}/test/app not found: name unknown: repository name not known to registry`,
  });
  proxy.addFault({ match: /\/manifests\//, fault: { kind: 'status', status: 403, body: '' } });
  await assert.rejects(client(proxy.host).getManifest('v1'), {
    name: 'NotFound',
    message: `pull access denied for ${proxy.host}/test/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`,
  });
});

test('fetchBlob: the config, verified and capped', async () => {
  const c = client(reg.host);
  assert.deepEqual(await c.fetchBlob(image.configDigest, 1 << 20), image.config);
  await assert.rejects(c.fetchBlob(image.configDigest, 10), (err: unknown) => {
    assert.ok(err instanceof SystemError);
    assert.match(err.message, /too large/);
    return true;
  });
  proxy.addFault({ match: new RegExp(image.configDigest), fault: { kind: 'flip', at: 3 } });
  await assert.rejects(client(proxy.host).fetchBlob(image.configDigest, 1 << 20), {
    message: `blob verification failed for digest ${image.configDigest}`,
  });
});

test('openBlob streams the whole blob; its sha256 is the digest', async () => {
  const b = await client(reg.host).openBlob(bigDigest, 0);
  assert.equal(b.offset, 0);
  assert.equal(b.total, big.length);
  const hash = createHash('sha256');
  let n = 0;
  for await (const chunk of b.body) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  assert.equal(n, big.length);
  assert.equal(`sha256:${hash.digest('hex')}`, bigDigest);
});

test('openBlob resumes at an offset with a Range request', async () => {
  const off = 123_457;
  const b = await client(reg.host).openBlob(bigDigest, off);
  assert.equal(b.offset, off);
  assert.equal(b.total, big.length);
  assert.deepEqual(await collect(b.body), big.subarray(off));
});

test('a registry that ignores Range answers 200: offset 0 and the whole blob', async () => {
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'ignoreRange' } });
  const b = await client(proxy.host).openBlob(bigDigest, 5000);
  assert.equal(b.offset, 0);
  assert.equal(b.total, big.length);
  assert.deepEqual(await collect(b.body), big);
});

test('offset at the end of the blob: an empty body', async () => {
  const b = await client(reg.host).openBlob(bigDigest, big.length);
  assert.equal(b.offset, big.length);
  assert.equal((await collect(b.body)).length, 0);
});

test('127.0.0.0/8, ::1 and localhost are insecure by default; listed names and CIDRs too', async () => {
  assert.equal(isInsecureRegistry('127.0.0.1:5000', []), true);
  assert.equal(isInsecureRegistry('127.9.8.7', []), true);
  assert.equal(isInsecureRegistry('[::1]:5000', []), true);
  assert.equal(isInsecureRegistry('localhost:5000', []), true);
  assert.equal(isInsecureRegistry('registry.example.com', []), false);
  assert.equal(isInsecureRegistry('10.1.2.3:5000', []), false);
  assert.equal(isInsecureRegistry('10.1.2.3:5000', ['10.0.0.0/8']), true);
  assert.equal(isInsecureRegistry('myreg:5000', ['myreg:5000']), true);
  assert.equal(isInsecureRegistry('myreg:5000', ['myreg:5001']), false);
  assert.equal(isInsecureRegistry('myreg', ['192.168.0.0/16'], ['192.168.1.10']), true);
  // The real registry speaks plain http on 127.0.0.1 and no insecure-registries is configured.
  const m = await client(reg.host, 'test/app', { insecureRegistries: [] }).getManifest('v1');
  assert.equal(m.digest, image.manifestDigest);
});

test('redirects are followed, to another origin and to the same one', async () => {
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'redirect', status: 307 } });
  const before = proxy.log.length;
  const b = await client(proxy.host).openBlob(bigDigest, 1000);
  assert.equal(b.offset, 1000);
  assert.deepEqual(await collect(b.body), big.subarray(1000));
  const hops = proxy.log.slice(before).filter((e) => e.url.includes('/blobs/'));
  assert.deepEqual(
    hops.map((e) => [e.listener, e.status]),
    [
      ['main', 307],
      ['other', 206],
    ],
  );
  assert.equal(hops[1]?.headers.range, 'bytes=1000-');

  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'redirect', status: 302, sameOrigin: true } });
  const c = await client(proxy.host).openBlob(image.configDigest, 0);
  assert.deepEqual(await collect(c.body), image.config);
});

test('connection cut mid-blob: an error event on the stream (Unavailable)', async () => {
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'cut', after: 100_000 } });
  const b = await client(proxy.host).openBlob(bigDigest, 0);
  const r = await drain(b.body);
  assert.ok(r.error instanceof Unavailable, String(r.error));
  assert.match((r.error as Error).message, new RegExp(`^blob ${bigDigest}: `));
  assert.ok(r.data.length <= 100_000);
  assert.deepEqual(r.data, big.subarray(0, r.data.length), 'the bytes before the cut are right');
  // Resume from what arrived.
  const rest = await client(proxy.host).openBlob(bigDigest, r.data.length);
  assert.deepEqual(Buffer.concat([r.data, await collect(rest.body)]), big);
});

test('truncated body (fewer bytes than Content-Length, then close): an error event', async () => {
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'truncate', after: 50_000 } });
  const b = await client(proxy.host).openBlob(bigDigest, 0);
  const r = await drain(b.body);
  assert.ok(r.error instanceof Unavailable, String(r.error));
  assert.equal(r.data.length, 50_000);
});

test('a flipped byte passes the stream but not the hash', async () => {
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'flip', at: 4242 } });
  const b = await client(proxy.host).openBlob(bigDigest, 0);
  const data = await collect(b.body);
  assert.equal(data.length, big.length);
  assert.notEqual(sha256(data), bigDigest);
  assert.equal(data[4242], (big[4242] as number) ^ 0xff);
});

test('stalled body: destroyed with a timeout error after readTimeoutMs', async () => {
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'stall', after: 20_000 } });
  const started = Date.now();
  const b = await client(proxy.host, 'test/app', { readTimeoutMs: 300 }).openBlob(bigDigest, 0);
  const r = await drain(b.body);
  const took = Date.now() - started;
  assert.ok(r.error instanceof Unavailable, String(r.error));
  assert.match((r.error as Error).message, /no data received for 0\.3 s/);
  assert.equal(r.data.length, 20_000);
  assert.ok(took < 3000, `took ${took} ms`);
});

test('a slow consumer is not a stall', async () => {
  const b = await client(reg.host, 'test/app', { readTimeoutMs: 300 }).openBlob(bigDigest, 0);
  const chunks: Buffer[] = [];
  let first = true;
  for await (const c of b.body) {
    chunks.push(c as Buffer);
    if (first) {
      first = false;
      await new Promise((r) => setTimeout(r, 900)); // far longer than readTimeoutMs
    }
  }
  assert.deepEqual(Buffer.concat(chunks), big);
});

test('500 answers: Unavailable each time, then the blob once the registry recovers', async () => {
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'status', status: 500 }, times: 2 });
  const c = client(proxy.host);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(c.openBlob(image.configDigest, 0), (err: unknown) => {
      assert.ok(err instanceof Unavailable);
      assert.match(err.message, /received unexpected HTTP status: 500 Internal Server Error$/);
      return true;
    });
  }
  const b = await c.openBlob(image.configDigest, 0);
  assert.deepEqual(await collect(b.body), image.config);
  proxy.addFault({ match: /\/manifests\//, fault: { kind: 'status', status: 503 } });
  await assert.rejects(c.getManifest('v1'), Unavailable);
});

test('429: Unavailable with the registry’s words', async () => {
  proxy.addFault({
    match: /\/manifests\//,
    fault: { kind: 'status', status: 429, body: JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }), headers: { 'content-type': 'application/json' } },
  });
  await assert.rejects(client(proxy.host).getManifest('v1'), { name: 'Unavailable', message: 'toomanyrequests: slow down' });
});

test('nothing listening: Unavailable naming the URL and the cause', async () => {
  const port = await freePort();
  await assert.rejects(client(`127.0.0.1:${port}`).getManifest('v1'), (err: unknown) => {
    assert.ok(err instanceof Unavailable);
    assert.match(err.message, new RegExp(`^Get "http://127\\.0\\.0\\.1:${port}/v2/": .*ECONNREFUSED`));
    return true;
  });
});

test('docker.io goes to the mirrors first; an unreachable mirror is skipped', async () => {
  const lib = await makeLayer([{ name: 'hello', data: 'hi\n' }]);
  const pushed = await reg.pushImage('library/hello', 'latest', [lib]);
  const dead = `http://127.0.0.1:${await freePort()}`;
  const c = client('docker.io', 'library/hello', { mirrors: [dead, `${proxy.url}/`] });
  const before = proxy.log.length;
  const m = await c.getManifest('latest');
  assert.equal(m.digest, pushed.manifestDigest);
  const b = await c.openBlob(lib.digest, 0);
  assert.deepEqual(await collect(b.body), lib.gz);
  assert.ok(proxy.log.slice(before).some((e) => e.url === '/v2/library/hello/manifests/latest'));
  // A mirror that lacks the image makes the client fall back to the next endpoint.
  const c2 = client('docker.io', 'library/hello', { mirrors: [`${proxy.url}`, `${reg.url}`] });
  proxy.addFault({ match: /\/manifests\//, fault: { kind: 'status', status: 404 } });
  assert.equal((await c2.getManifest('latest')).digest, pushed.manifestDigest);
});

test('errors are SkiffErrors with kinds the API maps', async () => {
  await assert.rejects(client(reg.host).openBlob('sha256:xyz', 0), (err: unknown) => err instanceof SkiffError && err.kind === 'invalid-parameter');
  await assert.rejects(client(reg.host).openBlob(bigDigest, -1), (err: unknown) => err instanceof SkiffError && err.kind === 'invalid-parameter');
});
