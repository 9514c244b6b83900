// Registry auth: X-Registry-Auth decoding, challenge parsing, Basic auth
// against the real docker-registry with htpasswd (bcrypt line made by perl's
// crypt, or python3's), and the Bearer token flow with the in-process token
// server, enforced by the fault proxy's gate in front of an open registry.
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { NotFound, Unauthorized, Unavailable } from '../../src/errors.js';
import { decodeRegistryAuth, parseChallenges, parseRegistryErrors, type AuthConfig } from '../../src/pull/auth.js';
import { RegistryClient, type RegistryClientOptions } from '../../src/pull/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faultproxy.js';
import { makeLayer, pseudoRandom, startRegistry, type PushedImage, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from '../helpers/tokenserver.js';

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');

test('X-Registry-Auth: absent, empty and {} mean anonymous', () => {
  assert.equal(decodeRegistryAuth(undefined), undefined);
  assert.equal(decodeRegistryAuth(''), undefined);
  assert.equal(decodeRegistryAuth('e30='), undefined);
  assert.equal(decodeRegistryAuth('e30'), undefined);
  assert.equal(decodeRegistryAuth(b64url({ username: '', password: '', serveraddress: 'docker.io' })), undefined);
});

test('X-Registry-Auth: base64url and standard base64, padded or not', () => {
  // "?>?" makes base64 use + and / (and base64url - and _).
  const cfg = { username: 'u?>?', password: 'p?>?~~~', serveraddress: 'https://index.docker.io/v1/' };
  const url = b64url(cfg);
  const std = b64(cfg);
  assert.notEqual(url, std);
  assert.deepEqual(decodeRegistryAuth(url), cfg);
  assert.deepEqual(decodeRegistryAuth(std), cfg);
  assert.deepEqual(decodeRegistryAuth(std.replace(/=+$/, '')), cfg);
  assert.deepEqual(decodeRegistryAuth(` ${url} `), cfg);
});

test('X-Registry-Auth: `auth`, tokens, and fields that are not strings', () => {
  const auth = Buffer.from('alice:pa:ss').toString('base64');
  assert.deepEqual(decodeRegistryAuth(b64url({ auth })), { auth, username: 'alice', password: 'pa:ss' });
  assert.deepEqual(decodeRegistryAuth(b64url({ username: 'bob', password: 'x', auth })), { username: 'bob', password: 'x', auth });
  assert.deepEqual(decodeRegistryAuth(b64url({ identitytoken: 'id' })), { identitytoken: 'id' });
  assert.deepEqual(decodeRegistryAuth(b64url({ registrytoken: 'rt', email: 'x@y' })), { registrytoken: 'rt' });
  assert.deepEqual(decodeRegistryAuth(b64url({ username: 7, password: 'p' })), { password: 'p' });
});

test('X-Registry-Auth: garbage is no credentials, never an error (as dockerd)', () => {
  assert.equal(decodeRegistryAuth('!!!not base64!!!'), undefined);
  assert.equal(decodeRegistryAuth(Buffer.from('not json').toString('base64')), undefined);
  assert.equal(decodeRegistryAuth(b64url(['username'])), undefined);
  assert.equal(decodeRegistryAuth(b64url('text')), undefined);
  assert.equal(decodeRegistryAuth(b64url(null)), undefined);
});

test('WWW-Authenticate: Docker Hub’s challenge', () => {
  const h = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"';
  assert.deepEqual(parseChallenges(h), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
});

test('WWW-Authenticate: several challenges, escapes, spacing, case, token68, unquoted realms', () => {
  assert.deepEqual(parseChallenges('Basic realm="reg", BEARER Realm="https://t/x" , Service=svc,error="insufficient_scope"'), [
    { scheme: 'basic', params: { realm: 'reg' } },
    { scheme: 'bearer', params: { realm: 'https://t/x', service: 'svc', error: 'insufficient_scope' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="a \\"quoted\\" \\\\ realm, with comma"'), [{ scheme: 'basic', params: { realm: 'a "quoted" \\ realm, with comma' } }]);
  assert.deepEqual(parseChallenges('Negotiate abc+/=='), [{ scheme: 'negotiate', params: {}, token68: 'abc+/==' }]);
  assert.deepEqual(parseChallenges('Negotiate, Basic realm = "x"'), [
    { scheme: 'negotiate', params: {} },
    { scheme: 'basic', params: { realm: 'x' } },
  ]);
  assert.deepEqual(parseChallenges('Bearer realm=http://127.0.0.1:5000/token,service=local'), [
    { scheme: 'bearer', params: { realm: 'http://127.0.0.1:5000/token', service: 'local' } },
  ]);
  assert.deepEqual(parseChallenges(''), []);
});

test('registry error bodies are read like the distribution client', () => {
  const json = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
  assert.deepEqual(parseRegistryErrors(401, 'application/json', json, 'Bearer realm="r",error="insufficient_scope"'), [
    { code: 'DENIED', message: 'requested access to the resource is denied' },
    { code: 'UNAUTHORIZED', message: 'authentication required' },
  ]);
  assert.deepEqual(parseRegistryErrors(401, 'application/json; charset=utf-8', '{"details":"incorrect username or password"}'), [
    { code: 'UNAUTHORIZED', message: 'incorrect username or password' },
  ]);
  assert.deepEqual(parseRegistryErrors(403, 'text/html', '<h1>no</h1>'), [{ code: 'DENIED', message: '<h1>no</h1>' }]);
  assert.deepEqual(parseRegistryErrors(401, undefined, ''), [{ code: 'UNAUTHORIZED', message: 'authentication required' }]);
});

// --- against registries ---

const USER = { username: 'alice', password: 's3cret pass' };
let open: TestRegistry;
let basic: TestRegistry;
let image: PushedImage;
let secret: PushedImage;
const clients: RegistryClient[] = [];
const stoppers: Array<() => Promise<void>> = [];

function client(domain: string, auth?: AuthConfig, opts: Partial<RegistryClientOptions> = {}, path = 'test/app'): RegistryClient {
  const c = new RegistryClient({ domain, path }, { insecureRegistries: [], mirrors: [], userAgent: 'skiff-test/0', auth, readTimeoutMs: 5000, ...opts });
  clients.push(c);
  return c;
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A token server and a proxy that demands its tokens in front of the open registry. */
async function bearer(opts: TokenServerOptions = {}): Promise<{ ts: TokenServer; proxy: FaultProxy }> {
  const ts = await startTokenServer(opts);
  const proxy = await startFaultProxy(open.url, { tokenServer: ts });
  stoppers.push(() => proxy.stop(), () => ts.stop());
  return { ts, proxy };
}

before(async () => {
  [open, basic] = await Promise.all([startRegistry(), startRegistry({ htpasswd: USER })]);
  const layer = await makeLayer([
    { name: 'app/', type: 'directory' },
    { name: 'app/blob', data: pseudoRandom(200 * 1024, 'auth') },
  ]);
  image = await open.pushImage('test/app', 'v1', [layer]);
  secret = await open.pushImage('test/secret', 'v1', [layer]);
  await basic.pushImage('test/app', 'v1', [layer]);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const stop of stoppers) await stop();
  await Promise.all([open?.stop(), basic?.stop()]);
});

test('Basic auth (htpasswd): username/password, or the `auth` field', async () => {
  const m = await client(basic.host, USER).getManifest('v1');
  assert.equal(m.digest, image.manifestDigest);
  const b = await client(basic.host, USER).openBlob(image.configDigest, 0);
  assert.deepEqual(await collect(b.body), image.config);
  const auth = Buffer.from(`${USER.username}:${USER.password}`).toString('base64');
  assert.equal((await client(basic.host, { auth }).getManifest('v1')).digest, image.manifestDigest);
});

test('Basic auth: no credentials, wrong credentials', async () => {
  await assert.rejects(client(basic.host).getManifest('v1'), (err: unknown) => {
    assert.ok(err instanceof Unauthorized);
    assert.equal(err.message, `Get "${basic.url}/v2/test/app/manifests/v1": no basic auth credentials`);
    return true;
  });
  await assert.rejects(client(basic.host, { username: USER.username, password: 'wrong' }).getManifest('v1'), (err: unknown) => {
    assert.ok(err instanceof Unauthorized);
    assert.equal(err.message, 'unauthorized: authentication required');
    return true;
  });
});

test('Bearer, anonymous: one token request serves several calls (cache hit)', async () => {
  const { ts, proxy } = await bearer();
  const c = client(proxy.host);
  assert.equal((await c.getManifest('v1')).digest, image.manifestDigest);
  assert.deepEqual(await c.fetchBlob(image.configDigest, 1 << 20), image.config);
  const b = await c.openBlob(image.layers[0]?.digest as string, 0);
  assert.deepEqual(await collect(b.body), image.layers[0]?.gz);
  assert.equal(c.tokenRequests, 1);
  assert.equal(ts.requests.length, 1);
  const r = ts.requests[0];
  assert.equal(r?.method, 'GET');
  assert.equal(r?.service, 'test');
  assert.deepEqual(r?.scopes, ['repository:test/app:pull']);
  assert.equal(r?.authorization, undefined);
  // The registry saw the token on every request after the /v2/ ping.
  const calls = proxy.log.filter((e) => e.url !== '/v2/');
  assert.ok(calls.length >= 3);
  assert.ok(calls.every((e) => e.headers.authorization?.startsWith('Bearer ') && e.status < 300), JSON.stringify(calls.map((e) => [e.url, e.status])));
});

test('Bearer: concurrent requests share one token request', async () => {
  const { ts, proxy } = await bearer();
  const c = client(proxy.host);
  const blobs = await Promise.all([1, 2, 3, 4, 5].map(() => c.openBlob(image.configDigest, 0)));
  for (const b of blobs) assert.deepEqual(await collect(b.body), image.config);
  assert.equal(ts.requests.length, 1);
});

test('Bearer with credentials: Basic to the token server, account= in the query', async () => {
  const { ts, proxy } = await bearer({ users: { [USER.username]: USER.password }, requireLogin: true, tokenField: 'access_token' });
  assert.equal((await client(proxy.host, USER).getManifest('v1')).digest, image.manifestDigest);
  assert.equal(ts.requests.length, 1);
  assert.equal(ts.requests[0]?.grant, 'basic');
  assert.equal(ts.requests[0]?.account, USER.username);
  // Wrong password, and no credentials at all, are refused by the token server.
  await assert.rejects(client(proxy.host, { ...USER, password: 'nope' }).getManifest('v1'), (err: unknown) => {
    assert.ok(err instanceof Unauthorized);
    assert.equal(err.message, `Get "${proxy.url}/v2/test/app/manifests/v1": unauthorized: incorrect username or password`);
    return true;
  });
  await assert.rejects(client(proxy.host).getManifest('v1'), Unauthorized);
});

test('Bearer with an identity token: the OAuth2 refresh_token POST', async () => {
  const { ts, proxy } = await bearer({ refreshTokens: { 'id-token-1': USER.username }, requireLogin: true });
  assert.equal((await client(proxy.host, { identitytoken: 'id-token-1' }).getManifest('v1')).digest, image.manifestDigest);
  assert.equal(ts.requests.length, 1);
  assert.equal(ts.requests[0]?.method, 'POST');
  assert.equal(ts.requests[0]?.grant, 'refresh_token');
  assert.equal(ts.requests[0]?.account, USER.username);
  assert.deepEqual(ts.requests[0]?.scopes, ['repository:test/app:pull']);
  await assert.rejects(client(proxy.host, { identitytoken: 'stale' }).getManifest('v1'), Unauthorized);
});

test('registrytoken is sent as the Bearer token, without a token request', async () => {
  const { ts, proxy } = await bearer();
  const token = ts.issue(undefined, ['test/app']);
  assert.equal((await client(proxy.host, { registrytoken: token }).getManifest('v1')).digest, image.manifestDigest);
  assert.equal(ts.requests.length, 0);
});

test('a token the registry no longer accepts is replaced once', async () => {
  const { ts, proxy } = await bearer();
  const c = client(proxy.host);
  await c.getManifest('v1');
  ts.revokeAll();
  assert.equal((await c.getManifest(image.manifestDigest)).digest, image.manifestDigest);
  assert.equal(c.tokenRequests, 2);
});

test('a repository the token does not cover: Docker’s "pull access denied" (NotFound)', async () => {
  const { ts, proxy } = await bearer({ access: (_account, repo) => repo !== 'test/secret' });
  await assert.rejects(client(proxy.host, undefined, {}, 'test/secret').getManifest('v1'), (err: unknown) => {
    assert.ok(err instanceof NotFound);
    assert.equal(
      err.message,
      `pull access denied for ${proxy.host}/test/secret, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`,
    );
    return true;
  });
  assert.ok(secret.manifestDigest); // it does exist behind the gate
  assert.equal(ts.requests.length, 1, 'a fresh token refused for its scope is not fetched again');
});

test('a redirect to another origin does not carry the registry’s Authorization', async () => {
  const { proxy } = await bearer();
  proxy.addFault({ match: /\/blobs\//, fault: { kind: 'redirect', status: 307 } });
  const c = client(proxy.host);
  const digest = image.layers[0]?.digest as string;
  const b = await c.openBlob(digest, 100);
  assert.deepEqual(await collect(b.body), image.layers[0]?.gz.subarray(100));
  const hops = proxy.log.filter((e) => e.url.includes('/blobs/'));
  assert.equal(hops.length, 2);
  assert.equal(hops[0]?.listener, 'main');
  assert.match(hops[0]?.headers.authorization ?? '', /^Bearer /);
  assert.equal(hops[1]?.listener, 'other');
  assert.equal(hops[1]?.headers.authorization, undefined);
  assert.equal(hops[1]?.headers.range, 'bytes=100-');
});

test('token server unreachable: Unavailable', async () => {
  const { ts, proxy } = await bearer();
  const c = client(proxy.host);
  await ts.stop();
  await assert.rejects(c.getManifest('v1'), (err: unknown) => {
    assert.ok(err instanceof Unavailable);
    assert.match(err.message, /^Get "http:\/\/127\.0\.0\.1:\d+\/v2\/test\/app\/manifests\/v1": Get "http:\/\/127\.0\.0\.1:\d+\/token": .*ECONNREFUSED/);
    return true;
  });
});
