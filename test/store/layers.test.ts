import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { pack } from 'tar-stream';
import { readTar } from '../../src/archive/reader.js';
import { extractLayer } from '../../src/store/extract.js';
import { LayerStore, type LayerRecord } from '../../src/store/layers.js';
import { SpecialFiles } from '../../src/store/special.js';
import { createLogger } from '../../src/log/logger.js';
import { tempDir } from '../helpers/daemon.js';

interface E {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device';
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  pax?: Record<string, string>;
}

async function makeTar(entries: E[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  for (const e of entries) {
    const data = e.data === undefined ? ((e.type ?? 'file') === 'file' ? Buffer.alloc(0) : undefined) : Buffer.from(e.data);
    const header = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: new Date(1_700_000_000_000), pax: e.pax, size: data?.length ?? 0 } as const;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (data) p.entry(header, data, cb);
      else p.entry(header, cb);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

function chunked(buf: Buffer, size = 777): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function applyTar(store: LayerStore, tar: Buffer, parent: string | null = null): Promise<LayerRecord> {
  const tx = await store.begin();
  try {
    const { entries, trailer } = readTar(chunked(tar));
    const stats = await extractLayer(entries, { diffDir: tx.diffDir, keepDir: tx.keepDir }, tx.split, new SpecialFiles());
    await tx.split.segment(trailer());
    return await tx.commit(sha(tar), parent, stats.contentBytes, stats.superseded);
  } catch (err) {
    await tx.abort();
    throw err;
  }
}

async function rebuilt(store: LayerStore, chainId: string): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of store.tar(chainId)) out.push(c as Buffer);
  return Buffer.concat(out);
}

const logger = createLogger('fatal');

test('a layer extracts into overlay2 form and its tar rebuilds byte for byte', async () => {
  const root = tempDir('skiff-store-');
  const store = await LayerStore.open(root, logger);
  const long = 'd/' + 'x'.repeat(150) + '/file-with-a-long-name.txt';
  const tar = await makeTar([
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', data: Buffer.alloc(3 * 1024 * 1024 + 7, 0xab), mode: 0o4755 },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
    { name: 'bin/ls', type: 'link', linkname: 'bin/busybox' },
    { name: long, data: 'long name via PAX' },
    { name: 'etc/.wh.old.conf' },
    { name: 'var/.wh..wh..opq' },
    { name: 'var/new', data: 'n', uid: 1000, gid: 1001 },
    { name: 'dup', data: 'first version' },
    { name: 'dup', data: 'second' },
    { name: 'cap', data: 'c', pax: { 'SCHILY.xattr.user.test': 'value' } },
    { name: 'fifo', type: 'fifo' },
  ]);
  const rec = await applyTar(store, tar);
  const diff = store.diffDir(rec.chainId);
  assert.equal(rec.chainId, sha(tar));
  assert.equal(lstatSync(join(diff, 'bin/busybox')).mode & 0o7777, 0o4755);
  assert.equal(readlinkSync(join(diff, 'bin/sh')), 'busybox');
  assert.equal(lstatSync(join(diff, 'bin/ls')).ino, lstatSync(join(diff, 'bin/busybox')).ino);
  assert.equal(readFileSync(join(diff, long), 'utf8'), 'long name via PAX');
  const wh = lstatSync(join(diff, 'etc/old.conf'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 char device');
  assert.equal(existsSync(join(diff, 'etc/.wh.old.conf')), false);
  const opq = spawnSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(diff, 'var')], { encoding: 'utf8' });
  assert.equal(opq.stdout, 'y');
  assert.equal(lstatSync(join(diff, 'var/new')).uid, 1000);
  assert.equal(readFileSync(join(diff, 'dup'), 'utf8'), 'second');
  assert.ok(lstatSync(join(diff, 'fifo')).isFIFO());
  assert.equal(lstatSync(join(diff, 'bin')).mtimeMs, 1_700_000_000_000);
  // As Docker counts it: files once (the replaced `dup` no more), plus the symlink's target length.
  assert.equal(rec.size, 3 * 1024 * 1024 + 7 + 'busybox'.length + 17 + 1 + 'second'.length + 1);
  assert.deepEqual(await rebuilt(store, rec.chainId), tar);
  assert.deepEqual(await store.verify(rec.chainId), { ok: true, actual: rec.diffId });
});

test('a layer of thousands of files: every byte back, and no listener piles up on the tar-split stream', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const root = tempDir('skiff-store-');
    const store = await LayerStore.open(root, logger);
    const entries: E[] = [];
    for (let d = 0; d < 30; d++) {
      entries.push({ name: `lib/m${d}/`, type: 'directory' });
      for (let f = 0; f < 100; f++) entries.push({ name: `lib/m${d}/f${f}.txt`, data: `${d}/${f} `.repeat(1 + ((d * 100 + f) % 300)) });
    }
    const tar = await makeTar(entries);
    const rec = await applyTar(store, tar);
    assert.equal(readFileSync(join(store.diffDir(rec.chainId), 'lib/m29/f99.txt'), 'utf8'), '29/99 '.repeat(1 + (2999 % 300)));
    assert.ok((await rebuilt(store, rec.chainId)).equals(tar), 'the tar rebuilds byte for byte');
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('a tar written by GNU tar (long names, GNU and PAX formats) rebuilds exactly', async () => {
  const src = tempDir('skiff-gnutar-');
  mkdirSync(join(src, 'a'.repeat(120), 'b'.repeat(60)), { recursive: true });
  writeFileSync(join(src, 'a'.repeat(120), 'b'.repeat(60), 'f'), 'hello');
  symlinkSync('a'.repeat(120) + '/' + 'b'.repeat(70), join(src, 'longlink'));
  const root = tempDir('skiff-store-');
  const store = await LayerStore.open(root, logger);
  for (const format of ['gnu', 'pax']) {
    const r = spawnSync('tar', ['-C', src, `--format=${format}`, '-cf', '-', '.'], { maxBuffer: 1 << 26 });
    assert.equal(r.status, 0);
    const tar = r.stdout as Buffer;
    const rec = await applyTar(store, tar);
    assert.deepEqual(await rebuilt(store, rec.chainId), tar, format);
  }
});

test('hostile layers fail and leave nothing behind', async () => {
  const root = tempDir('skiff-store-');
  const store = await LayerStore.open(root, logger);
  const outside = tempDir('skiff-outside-');
  const attacks: Array<[string, E[], RegExp]> = [
    ['dot-dot', [{ name: '../../../tmp/evil', data: 'x' }], /escapes the layer/],
    ['symlinked parent', [{ name: 'p', type: 'symlink', linkname: outside }, { name: 'p/evil', data: 'x' }], /parent p is not a directory/],
    ['hardlink outside', [{ name: 'h', type: 'link', linkname: '../../etc/passwd' }], /escapes the layer/],
    ['hardlink to nothing', [{ name: 'h', type: 'link', linkname: 'etc/passwd' }], /not a file of this layer/],
    ['hardlink to symlink parent path', [{ name: 'p', type: 'symlink', linkname: '/etc' }, { name: 'h', type: 'link', linkname: 'p/passwd' }], /not a file of this layer/],
    ['bad whiteout', [{ name: '.wh.' }], /invalid whiteout/],
  ];
  for (const [label, entries, re] of attacks) {
    const tar = await makeTar(entries);
    await assert.rejects(applyTar(store, tar), re, label);
  }
  const corrupt = await makeTar([{ name: 'ok', data: 'fine' }]);
  corrupt[100] = 0x39; // mode field: breaks the header checksum
  await assert.rejects(applyTar(store, corrupt), /checksum/);
  const truncated = (await makeTar([{ name: 'big', data: Buffer.alloc(10_000) }])).subarray(0, 4000);
  await assert.rejects(applyTar(store, truncated), /unexpected EOF/);
  assert.deepEqual(readdirSync(outside), []);
  assert.equal(existsSync('/tmp/evil'), false);
  assert.deepEqual(readdirSync(join(root, 'overlay2')), []);
  assert.deepEqual(readdirSync(join(root, 'layerdb', 'tmp')), []);
  assert.equal(store.list().length, 0);
});

test('absolute entry names land inside the layer', async () => {
  const root = tempDir('skiff-store-');
  const store = await LayerStore.open(root, logger);
  const rec = await applyTar(store, await makeTar([{ name: '/etc/hostname', data: 'box' }]));
  assert.equal(readFileSync(join(store.diffDir(rec.chainId), 'etc/hostname'), 'utf8'), 'box');
});

test('recovery prunes interrupted layers and keeps committed ones', async () => {
  const root = tempDir('skiff-store-');
  const store = await LayerStore.open(root, logger);
  const kept = await applyTar(store, await makeTar([{ name: 'a', data: 'a' }]));
  const child = await applyTar(store, await makeTar([{ name: 'b', data: 'b' }]), kept.chainId);
  // An interrupted layer: intent recorded, files half written, never committed.
  const tx = await store.begin();
  writeFileSync(join(tx.diffDir, 'partial'), 'half');
  // A directory nothing points to.
  mkdirSync(join(root, 'overlay2', 'orphan', 'diff'), { recursive: true });
  const lines: string[] = [];
  const reopened = await LayerStore.open(root, createLogger('info', { write: (l: string) => lines.push(l) }));
  assert.deepEqual(reopened.list().map((r) => r.chainId).sort(), [kept.chainId, child.chainId].sort());
  assert.deepEqual(readdirSync(join(root, 'overlay2')).sort(), [kept.cacheId, child.cacheId].sort());
  assert.deepEqual(readdirSync(join(root, 'layerdb', 'tmp')), []);
  assert.match(lines.join(''), /Pruned 2 unfinished or unreferenced layers/);
  assert.deepEqual(await reopened.verify(child.chainId), { ok: true, actual: child.diffId });
});
