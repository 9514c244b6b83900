// The `local` log driver's files: records written and read back in order with
// their stream and time, rotation at max-size into gzip-compressed files
// (or plain ones with compress=false), at most max-file files, and recovery
// from a torn last record and from a compression cut short.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import { LocalLogWriter, parseLocalLogOpts, readLocalLog } from '../../src/exec/locallog.js';
import type { LogEntry } from '../../src/exec/jsonlog.js';

const dirs: string[] = [];
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-locallog-'));
  dirs.push(d);
  return d;
}

async function all(path: string, maxFile: number): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readLocalLog(path, maxFile)) out.push(e);
  return out;
}

describe('local log driver files', () => {
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('options: Docker defaults, validation', () => {
    assert.deepEqual(parseLocalLogOpts({}), { maxSize: 20 * 1024 * 1024, maxFile: 5, compress: true });
    assert.deepEqual(parseLocalLogOpts({ 'max-size': '1k', 'max-file': '2', compress: 'false' }), { maxSize: 1024, maxFile: 2, compress: false });
    assert.throws(() => parseLocalLogOpts({ 'max-file': '0' }), /max-file must be a positive number/);
    assert.throws(() => parseLocalLogOpts({ labels: 'x' }), /unknown log opt 'labels' for log driver local/);
    assert.throws(() => parseLocalLogOpts({ 'max-size': 'big' }), /invalid value for log-opt max-size/);
  });

  test('lines, partial lines and streams come back in order, with increasing times', async () => {
    const path = join(temp(), 'local-logs', 'container.log');
    const w = new LocalLogWriter(path, parseLocalLogOpts({}));
    const before = Date.now();
    await w.write('stdout', Buffer.from('one\ntwo\npart'));
    await w.write('stderr', Buffer.from('err\n'));
    await w.close();
    const got = await all(path, 5);
    assert.deepEqual(got.map((e) => [e.stream, e.log]), [['stdout', 'one\n'], ['stdout', 'two\n'], ['stdout', 'part'], ['stderr', 'err\n']]);
    for (const e of got) {
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.ok(Date.parse(e.time) >= before - 1);
    }
    assert.deepEqual([...got.map((e) => e.time)].sort(), got.map((e) => e.time));
    // Compact: a 4-byte line costs 17 bytes of framing, not a JSON object.
    assert.equal(statSync(path).size, 8 + got.reduce((n, e) => n + 17 + Buffer.byteLength(e.log), 0));
  });

  test('rotation: compressed rotated files, at most max-file, the newest lines kept in order', async () => {
    const dir = temp();
    const path = join(dir, 'container.log');
    const w = new LocalLogWriter(path, parseLocalLogOpts({ 'max-size': '1k', 'max-file': '3' }));
    for (let i = 0; i < 300; i++) await w.write('stdout', Buffer.from(`line ${i}\n`));
    await w.close();
    const names = readdirSync(dir).sort();
    assert.deepEqual(names, ['container.log', 'container.log.1.gz', 'container.log.2.gz']);
    assert.ok(statSync(path).size <= 1024);
    assert.equal(gunzipSync(readFileSync(join(dir, 'container.log.1.gz'))).subarray(0, 4).toString(), 'SKLG');
    const got = (await all(path, 3)).map((e) => e.log);
    assert.equal(got.at(-1), 'line 299\n');
    const first = Number(/line (\d+)/.exec(got[0] ?? '')?.[1]);
    assert.deepEqual(got, Array.from({ length: 300 - first }, (_, k) => `line ${first + k}\n`));
    assert.ok(first > 0 && got.length > 60, `${got.length} lines kept from ${first}`);
  });

  test('one chunk of many lines is split across files at max-size', async () => {
    const dir = temp();
    const path = join(dir, 'container.log');
    const w = new LocalLogWriter(path, parseLocalLogOpts({ 'max-size': '1k', 'max-file': '3' }));
    await w.write('stdout', Buffer.from(Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join('')));
    await w.close();
    assert.deepEqual(readdirSync(dir).sort(), ['container.log', 'container.log.1.gz', 'container.log.2.gz']);
    for (const f of readdirSync(dir)) {
      const bytes = f.endsWith('.gz') ? gunzipSync(readFileSync(join(dir, f))).length : statSync(join(dir, f)).size;
      assert.ok(bytes <= 1024, `${f}: ${bytes} bytes`);
    }
    const got = (await all(path, 3)).map((e) => e.log);
    assert.equal(got.at(-1), 'line 299\n');
    assert.ok(got.length < 150, `${got.length} lines kept`);
  });

  test('compress=false keeps rotated files plain', async () => {
    const dir = temp();
    const path = join(dir, 'container.log');
    const w = new LocalLogWriter(path, parseLocalLogOpts({ 'max-size': '200', 'max-file': '2', compress: 'false' }));
    for (let i = 0; i < 40; i++) await w.write('stderr', Buffer.from(`e${i}\n`));
    await w.close();
    assert.deepEqual(readdirSync(dir).sort(), ['container.log', 'container.log.1']);
    const got = await all(path, 2);
    assert.equal(got.at(-1)?.log, 'e39\n');
    assert.ok(got.every((e) => e.stream === 'stderr'));
  });

  test('recovery: a torn last record is cut off, a half-done compression is cleaned up', async () => {
    const dir = temp();
    const path = join(dir, 'container.log');
    const w1 = new LocalLogWriter(path, parseLocalLogOpts({}));
    await w1.write('stdout', Buffer.from('kept\nlost\n'));
    await w1.close();
    truncateSync(path, statSync(path).size - 3);
    assert.deepEqual((await all(path, 5)).map((e) => e.log), ['kept\n'], 'the reader stops at the torn record');
    writeFileSync(join(dir, 'container.log.1.gz.tmp'), 'partial');
    writeFileSync(join(dir, 'container.log.1'), 'stale plain copy');
    writeFileSync(join(dir, 'container.log.1.gz'), Buffer.alloc(0));
    const w2 = new LocalLogWriter(path, parseLocalLogOpts({}));
    await w2.write('stdout', Buffer.from('after\n'));
    await w2.close();
    assert.ok(!existsSync(join(dir, 'container.log.1.gz.tmp')));
    assert.ok(!existsSync(join(dir, 'container.log.1')));
    assert.deepEqual((await all(path, 5)).map((e) => e.log), ['kept\n', 'after\n']);
  });
});
