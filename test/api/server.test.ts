import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { jsonBody } from '../../src/api/context.js';
import { hijack } from '../../src/api/hijack.js';
import { JsonMessageWriter, progressMessage, readJsonMessages } from '../../src/api/jsonstream.js';
import { sendJSON } from '../../src/api/respond.js';
import { Router } from '../../src/api/router.js';
import { systemRoutes } from '../../src/api/routes/system.js';
import { createApiServer } from '../../src/api/server.js';
import { demux, writeFrames } from '../../src/api/stdcopy.js';
import { NotFound } from '../../src/errors.js';
import { createLogger } from '../../src/log/logger.js';
import { versionInfo } from '../../src/system/info.js';
import { parseResponse, rawRequest, tempDir } from '../helpers/daemon.js';

const dir = tempDir('skiff-api-');
const socket = join(dir, 'api.sock');
const router = new Router();
systemRoutes(router, { version: () => versionInfo(false), info: () => ({ ID: 'x' }) });
router.post('/json', async (ctx) => sendJSON(ctx.res, 200, { got: await jsonBody(ctx) }));
router.get('/images/(?<name>.+)/json', (ctx) => sendJSON(ctx.res, 200, { name: ctx.params.name }));
router.get('/missing', () => {
  throw new NotFound('No such container: nope');
});
router.get('/crash', () => {
  throw new Error('boom');
});
router.post('/progress', async (ctx) => {
  ctx.res.writeHead(200, { 'Content-Type': 'application/json' });
  ctx.res.flushHeaders();
  const w = new JsonMessageWriter(ctx.res);
  await w.write(progressMessage('abc', 'Downloading', 50, 100));
  await w.error('network down');
  ctx.res.end();
});
// Echoes stdin back as stdout frames, then a stderr frame once stdin ends.
router.post('/attach', async (ctx) => {
  const h = await hijack(ctx);
  for await (const chunk of h.input) await writeFrames(h.output, 1, chunk as Buffer);
  await writeFrames(h.output, 2, Buffer.from('stdin closed\n'));
  h.close();
});
const api = createApiServer({ router, logger: createLogger('fatal'), experimental: false });
const server = api.newServer();

before(() => new Promise<void>((resolve) => server.listen(socket, resolve)));
after(() => {
  api.stopAccepting();
  api.closeAll();
});

function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, headers }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('every response carries the version headers', async () => {
  for (const path of ['/_ping', '/v1.41/version', '/nope']) {
    const r = await call('GET', path);
    assert.equal(r.headers['api-version'], '1.41');
    assert.equal(r.headers['ostype'], 'linux');
    assert.match(String(r.headers['server']), /^skiff\//);
  }
});

test('ping: GET says OK, HEAD is empty, no caching', async () => {
  const g = await call('GET', '/_ping');
  assert.equal(g.status, 200);
  assert.equal(g.body, 'OK');
  assert.equal(g.headers['cache-control'], 'no-cache, no-store, must-revalidate');
  const h = await call('HEAD', '/_ping');
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-length'], '0');
  assert.equal(h.headers['content-type'], 'text/plain; charset=utf-8');
});

test('versioned and unversioned paths; too new and too old versions', async () => {
  assert.equal(JSON.parse((await call('GET', '/version')).body).ApiVersion, '1.41');
  assert.equal(JSON.parse((await call('GET', '/v1.24/version')).body).ApiVersion, '1.41');
  const tooNew = await call('GET', '/v1.50/version');
  assert.equal(tooNew.status, 400);
  assert.equal(JSON.parse(tooNew.body).message, 'client version 1.50 is too new. Maximum supported API version is 1.41');
  const tooOld = await call('GET', '/v1.11/version');
  assert.equal(tooOld.status, 400);
  assert.match(JSON.parse(tooOld.body).message, /^client version 1.11 is too old. Minimum supported API version is 1.12/);
});

test('errors use Docker JSON with Content-Type exactly application/json', async () => {
  const nf = await call('GET', '/v1.41/nope');
  assert.equal(nf.status, 404);
  assert.equal(nf.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(nf.body), { message: 'page not found' });
  const missing = await call('GET', '/missing');
  assert.equal(missing.status, 404);
  assert.deepEqual(JSON.parse(missing.body), { message: 'No such container: nope' });
  const crash = await call('GET', '/crash');
  assert.equal(crash.status, 500);
  assert.deepEqual(JSON.parse(crash.body), { message: 'boom' });
  const wrongMethod = await call('DELETE', '/version');
  assert.equal(wrongMethod.status, 404);
});

test('swarm routes answer 503 like a non-manager node', async () => {
  const r = await call('GET', '/v1.41/nodes');
  assert.equal(r.status, 503);
  assert.match(JSON.parse(r.body).message, /not a swarm manager/);
});

test('image names with slashes and colons reach the route decoded', async () => {
  const r = await call('GET', '/v1.41/images/127.0.0.1:5000/my%20repo/bb:v1/json');
  assert.deepEqual(JSON.parse(r.body), { name: '127.0.0.1:5000/my repo/bb:v1' });
});

test('JSON bodies: parsed, malformed refused, wrong type refused, size capped', async () => {
  const ok = await call('POST', '/json', '{"a":1}', { 'Content-Type': 'application/json' });
  assert.deepEqual(JSON.parse(ok.body), { got: { a: 1 } });
  const bad = await call('POST', '/json', '{"a":', { 'Content-Type': 'application/json' });
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).message, /^invalid JSON/);
  const ct = await call('POST', '/json', '{}', { 'Content-Type': 'text/plain' });
  assert.equal(ct.status, 400);
  assert.match(JSON.parse(ct.body).message, /unsupported Content-Type header \(text\/plain\)/);
  const big = await call('POST', '/json', 'x'.repeat(5 * 1024 * 1024), { 'Content-Type': 'application/json' });
  assert.equal(big.status, 400);
  assert.match(JSON.parse(big.body).message, /request body too large/);
  const bigChunked = await new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'POST', path: '/json', headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    for (let i = 0; i < 5; i++) req.write(chunk);
    req.end();
  });
  assert.equal(bigChunked, 400);
});

test('oversized headers get a 400 in Docker JSON shape', async () => {
  const raw = await rawRequest(socket, `GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
  const r = parseResponse(raw);
  assert.equal(r.status, 400);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(JSON.parse(r.body).message, 'request header too large');
});

test('garbage gets a 400 and the server keeps serving', async () => {
  const r = parseResponse(await rawRequest(socket, 'NOT HTTP AT ALL\r\n\r\n'));
  assert.equal(r.status, 400);
  assert.equal((await call('GET', '/_ping')).body, 'OK');
});

test('streaming JSON progress with a mid-stream error', async () => {
  const r = await call('POST', '/progress');
  const { Readable } = await import('node:stream');
  const msgs = [];
  for await (const m of readJsonMessages(Readable.from([r.body]))) msgs.push(m);
  assert.equal(msgs[0]?.id, 'abc');
  assert.deepEqual(msgs[0]?.progressDetail, { current: 50, total: 100 });
  assert.match(msgs[0]?.progress ?? '', /^\[=+>\s+\]\s+50B\/100B$/);
  assert.deepEqual(msgs[1], { errorDetail: { message: 'network down' }, error: 'network down' });
});

test('Upgrade: 101 UPGRADED bytes, body skipped, half-close is stdin EOF, output continues', async () => {
  const body = '{"stream":true,"hijack":true}';
  const frames: Array<[number, string]> = [];
  const head = await new Promise<string>((resolve, reject) => {
    const c = connect(socket);
    let buf = Buffer.alloc(0);
    let headText = '';
    c.on('connect', () => {
      c.write(
        `POST /v1.41/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}hello`,
      );
      setTimeout(() => c.end('world'), 50);
    });
    c.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
    c.on('end', async () => {
      const i = buf.indexOf('\r\n\r\n');
      headText = buf.subarray(0, i).toString();
      const { Readable } = await import('node:stream');
      for await (const f of demux(Readable.from([buf.subarray(i + 4)]))) frames.push([f.stream, f.payload.toString()]);
      resolve(headText);
    });
    c.on('error', reject);
  });
  assert.match(head, /^HTTP\/1.1 101 UPGRADED\r\nContent-Type: application\/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n/);
  assert.match(head, /\r\nApi-Version: 1.41/);
  assert.equal(frames.filter(([s]) => s === 1).map(([, p]) => p).join(''), 'helloworld');
  assert.deepEqual(frames[frames.length - 1], [2, 'stdin closed\n']);
});

test('no Upgrade: a 200 raw-stream response with the request body as stdin', async () => {
  const r = await call('POST', '/attach', 'abc', { 'Content-Type': 'text/plain' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/vnd.docker.raw-stream');
  const { Readable } = await import('node:stream');
  const frames = [];
  for await (const f of demux(Readable.from([Buffer.from(r.body, 'latin1')]))) frames.push(f.payload.toString());
  assert.deepEqual(frames, ['abc', 'stdin closed\n']);
});

test('an Upgrade request to an unknown route gets a plain 404', async () => {
  const r = parseResponse(await rawRequest(socket, 'POST /v1.41/nowhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n'));
  assert.equal(r.status, 404);
  assert.deepEqual(JSON.parse(r.body), { message: 'page not found' });
});

test('multi-part and malformed versions are 400s, like moby', async () => {
  const r = await call('GET', '/v1.41.3/version');
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.body).message, /client version 1.41.3 is too new/);
  const bad = await call('GET', '/v1..2/version');
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).message, /invalid API version/);
});

test('no Host header is fine; an unknown Expect gets a JSON 417', async () => {
  const r = parseResponse(await rawRequest(socket, 'GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n'));
  assert.equal(r.status, 200);
  const e = parseResponse(await rawRequest(socket, 'POST /json HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  assert.equal(e.status, 417);
  assert.equal(e.headers['content-type'], 'application/json');
});
