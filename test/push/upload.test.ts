// The blob uploader's chunking and resume logic against an in-process registry that can
// drop a PATCH after N bytes and keeps what arrived (a fault the Debian
// registry cannot be made to show reliably: it cancels uploads whose state
// token is stale), deterministic gzip, and the tar writer read back.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { gzipDeterministic } from '../../src/archive/compression.js';
import { readTar } from '../../src/archive/reader.js';
import { tarFile, tarHeader, tarTrailer, padding } from '../../src/archive/writer.js';
import { NotFound, Unavailable, type SkiffError } from '../../src/errors.js';
import type { RegistryAnswer, RegistryCall } from '../../src/pull/registry.js';
import { BlobUploader, type UploadClient } from '../../src/push/upload.js';
import { pseudoRandom } from '../helpers/registry.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

class FakeRegistry implements UploadClient {
  stored: Buffer[] = [];
  uploads = 0;
  patches: Array<{ method: string; offset: number; sent: number }> = [];
  blobs = new Map<string, Buffer>();
  /** Which request body (1-based, PATCH or PUT) is cut after `cutAfter` bytes. */
  cutAt = 1;
  readonly base: string;
  constructor(
    private readonly opts: {
      cutAfter?: number;
      forgetOnCut?: boolean;
      cutAt?: number;
      loseCommitAnswer?: boolean;
      /** The answer to a PATCH with Content-Range (a registry without chunks). */
      refuseChunks?: number;
      /** OCI-Chunk-Min-Length on the POST answer. */
      minChunk?: number;
      /** Registries are told apart by origin (chunk refusal is remembered per origin). */
      origin?: string;
    },
  ) {
    this.cutAt = opts.cutAt ?? 1;
    this.base = `${opts.origin ?? 'http://fake'}/`;
  }

  private answer(status: number, headers: Record<string, string> = {}, url = this.base): RegistryAnswer {
    return { status, header: (n) => headers[n], body: { dump: async () => undefined } as unknown as RegistryAnswer['body'], url };
  }
  private size(): number {
    return this.stored.reduce((n, b) => n + b.length, 0);
  }

  async call(method: string, target: string, opts: RegistryCall): Promise<RegistryAnswer> {
    const url = new URL(target, this.base);
    if (method === 'POST') {
      this.uploads++;
      this.stored = [];
      return this.answer(202, { location: `/up/${this.uploads}`, ...(this.opts.minChunk ? { 'oci-chunk-min-length': String(this.opts.minChunk) } : {}) });
    }
    if (method === 'DELETE') {
      this.uploads = -1;
      return this.answer(204);
    }
    if (method === 'PATCH' || method === 'PUT') {
      const parts: Buffer[] = [];
      if (typeof opts.body === 'function') for await (const c of opts.body()) parts.push(c);
      const body = Buffer.isBuffer(opts.body) ? opts.body : Buffer.concat(parts);
      const range = opts.headers?.['content-range'];
      if (range !== undefined && this.opts.refuseChunks) return this.answer(this.opts.refuseChunks);
      if (range !== undefined && !range.startsWith(`${this.size()}-`)) return this.answer(416);
      const p = { method, offset: this.size(), sent: 0 };
      this.patches.push(p);
      const cut = this.patches.length === this.cutAt ? this.opts.cutAfter : undefined;
      const take = cut !== undefined ? body.subarray(0, cut) : body;
      this.stored.push(Buffer.from(take));
      p.sent = take.length;
      if (cut !== undefined) {
        if (this.opts.forgetOnCut) this.uploads = -1;
        throw new Unavailable(`${method} "${url.href}": other side closed`);
      }
      if (method === 'PATCH') return this.answer(202, { location: url.pathname });
      const all = Buffer.concat(this.stored);
      if (sha(all) !== url.searchParams.get('digest')) return this.answer(400);
      this.blobs.set(sha(all), all);
      this.uploads = -1; // a committed upload is gone, as in distribution
      if (this.opts.loseCommitAnswer) throw new Unavailable(`${method} "${url.href}": other side closed`);
      return this.answer(201);
    }
    if (method === 'HEAD') {
      const blob = this.blobs.get(url.pathname.split('/').pop() ?? '');
      return blob ? this.answer(200, { 'content-length': String(blob.length) }) : this.answer(404);
    }
    if (method === 'GET') {
      if (this.uploads === -1) return this.answer(404);
      return this.answer(204, { range: `0-${Math.max(0, this.size() - 1)}`, location: url.pathname });
    }
    return this.answer(404);
  }
  async callError(a: RegistryAnswer, what: string): Promise<SkiffError> {
    return a.status === 404 ? new NotFound(`${what}: ${a.status}`) : new Unavailable(`${what}: ${a.status}`);
  }
}

function source(data: Buffer): () => AsyncIterable<Buffer> {
  return async function* () {
    for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
  };
}

test('an upload goes in chunks; one cut mid-chunk continues from the offset the registry reports, and the blob is whole', async () => {
  const data = pseudoRandom(2_000_000, 'upload');
  const chunk = 512 * 1024;
  const fake = new FakeRegistry({ cutAt: 2, cutAfter: 100_000 });
  const retries: number[] = [];
  const up = new BlobUploader(fake, 'a/b');
  const r = await up.upload(source(data), { attempts: 3, backoffMs: 1, chunkSize: chunk, onRetry: (n) => retries.push(n) });
  assert.deepEqual(r, { digest: sha(data), size: data.length });
  assert.deepEqual(retries, [1]);
  assert.equal(fake.uploads, -1, 'the same upload went on, and was committed');
  assert.deepEqual(fake.patches, [
    { method: 'PATCH', offset: 0, sent: chunk },
    { method: 'PATCH', offset: chunk, sent: 100_000 },
    { method: 'PATCH', offset: chunk + 100_000, sent: chunk },
    { method: 'PATCH', offset: 2 * chunk + 100_000, sent: chunk },
    { method: 'PUT', offset: 3 * chunk + 100_000, sent: 2_000_000 - 3 * chunk - 100_000 },
  ]);
  assert.deepEqual(fake.blobs.get(sha(data)), data);
});

test('a blob smaller than a chunk is one PUT; an upload the registry forgot starts over; attempts are limited', async () => {
  const data = pseudoRandom(300_000, 'forget');
  const fake = new FakeRegistry({ cutAfter: 100_000, forgetOnCut: true });
  const r = await new BlobUploader(fake, 'a/b').upload(source(data), { attempts: 2, backoffMs: 1 });
  assert.equal(r.digest, sha(data));
  assert.deepEqual(fake.patches, [
    { method: 'PUT', offset: 0, sent: 100_000 },
    { method: 'PUT', offset: 0, sent: 300_000 },
  ]);
  assert.equal(fake.uploads, -1);

  const always = new FakeRegistry({ cutAfter: 10 });
  const failing = new BlobUploader(
    {
      call: async (m, t, o) => {
        if (m === 'PUT') always.patches.length = 0; // every PUT is "the first": each one is cut
        return always.call(m, t, o);
      },
      callError: (a, w) => always.callError(a, w),
    },
    'a/b',
  );
  await assert.rejects(failing.upload(source(data), { attempts: 3, backoffMs: 1 }), /other side closed/);
});

test('a closing PUT whose answer was lost: the blob is there (HEAD), nothing is sent again', async () => {
  const data = pseudoRandom(1_000_000, 'lost answer');
  const fake = new FakeRegistry({ loseCommitAnswer: true });
  const r = await new BlobUploader(fake, 'a/b').upload(source(data), { attempts: 3, backoffMs: 1, chunkSize: 400_000 });
  assert.deepEqual(r, { digest: sha(data), size: data.length });
  assert.deepEqual(fake.patches.map((p) => p.method), ['PATCH', 'PATCH', 'PUT']);
});

test('a registry that refuses chunks (413) gets the blob as one streamed PATCH, and later blobs too; OCI-Chunk-Min-Length is honoured', async () => {
  const data = pseudoRandom(1_500_000, 'no chunks');
  const fake = new FakeRegistry({ refuseChunks: 413, origin: 'http://nochunks' });
  const up = new BlobUploader(fake, 'a/b');
  const retries: number[] = [];
  const r = await up.upload(source(data), { attempts: 1, backoffMs: 1, chunkSize: 500_000, onRetry: (n) => retries.push(n) });
  assert.deepEqual(r, { digest: sha(data), size: data.length });
  assert.deepEqual(retries, [], 'a refusal is no failed attempt');
  assert.deepEqual(fake.patches, [
    { method: 'PATCH', offset: 0, sent: 1_500_000 },
    { method: 'PUT', offset: 1_500_000, sent: 0 },
  ]);
  assert.equal(fake.uploads, -1);
  const next = pseudoRandom(1_200_000, 'no chunks 2');
  fake.patches = [];
  await up.upload(source(next), { attempts: 1, backoffMs: 1, chunkSize: 500_000 });
  assert.deepEqual(fake.patches.map((p) => p.method), ['PATCH', 'PUT'], 'the refusal is remembered: no chunk tried');
  assert.deepEqual(fake.blobs.get(sha(next)), next);

  const big = new FakeRegistry({ minChunk: 700_000, origin: 'http://bigchunks' });
  await new BlobUploader(big, 'a/b').upload(source(data), { attempts: 1, backoffMs: 1, chunkSize: 500_000 });
  assert.deepEqual(big.patches.map((p) => [p.method, p.sent]), [['PATCH', 700_000], ['PATCH', 700_000], ['PUT', 100_000]]);
});

test('gzipDeterministic: the same bytes in different chunkings give the same blob, with a fixed header', async () => {
  const data = Buffer.concat([pseudoRandom(200_000, 'gz'), Buffer.alloc(300_000, 7)]);
  async function digestOf(chunk: number): Promise<Buffer> {
    async function* src(): AsyncGenerator<Buffer> {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    }
    const out: Buffer[] = [];
    for await (const c of gzipDeterministic(src())) out.push(c as Buffer);
    return Buffer.concat(out);
  }
  const a = await digestOf(65536);
  const b = await digestOf(777);
  assert.equal(sha(a), sha(b));
  // No name, no mtime: bytes 4..7 (MTIME) are zero, FLG is zero.
  assert.deepEqual([...a.subarray(0, 8)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
});

test('the tar writer writes what the tar reader reads back (long names through PAX, links, directories)', async () => {
  const long = `${'d'.repeat(90)}/${'f'.repeat(60)}.json`;
  const body = Buffer.from('{"x":1}');
  const tar = Buffer.concat([
    tarHeader({ name: 'dir/', type: 'directory', mtime: 1_700_000_000 }),
    tarFile('dir/VERSION', Buffer.from('1.0'), 1_700_000_000),
    tarHeader({ name: 'dir/layer.tar', type: 'symlink', linkname: '../other/layer.tar' }),
    tarHeader({ name: long, type: 'file', size: body.length }),
    body,
    padding(body.length),
    tarTrailer(),
  ]);
  const { entries } = readTar((async function* () { yield tar; })());
  const seen: Array<[string, string, string]> = [];
  for await (const e of entries) {
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c);
    seen.push([e.header.name, e.header.type, e.header.type === 'symlink' ? e.header.linkname : Buffer.concat(chunks).toString()]);
  }
  assert.deepEqual(seen, [
    ['dir/', 'directory', ''],
    ['dir/VERSION', 'file', '1.0'],
    ['dir/layer.tar', 'symlink', '../other/layer.tar'],
    [long, 'file', '{"x":1}'],
  ]);
});
