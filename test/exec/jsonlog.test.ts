// json-file rotation: a single burst of many lines rotates between records,
// so no file grows past max-size, and reading all files gives every line back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsonLogWriter, readLog, type LogEntry } from '../../src/exec/jsonlog.js';

test('json-file: a burst of 300 lines in one chunk rotates between records within max-size', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-jsonlog-'));
  try {
    const path = join(dir, 'c-json.log');
    const w = new JsonLogWriter(path, { maxSize: 4096, maxFile: 100 });
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i} ${'x'.repeat(20)}\n`);
    await w.write('stdout', Buffer.from(lines.join('')));
    await w.close();
    const files = [path, ...Array.from({ length: 99 }, (_, i) => `${path}.${i + 1}`)].filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    });
    assert.ok(files.length > 5, `expected several rotated files, got ${files.length}`);
    for (const f of files) assert.ok(statSync(f).size <= 4096, `${f} is ${statSync(f).size} bytes`);
    const back: LogEntry[] = [];
    for await (const e of readLog(path, 100)) back.push(e);
    assert.deepEqual(back.map((e) => e.log), lines);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
