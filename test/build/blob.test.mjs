// Tests for build/sea-blob.mjs, the SEA blob writer build.mjs uses for 32-bit
// targets. The 8-byte form must match what this (64-bit) node writes itself;
// the 4-byte form is the same layout with 32-bit length fields.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { build } from 'esbuild';

import { SEA_BLOB_MAGIC, writeSeaBlob } from '../../build/sea-blob.mjs';

const CODE_PATH = 'dist/app.js';
let SCRIPT; // the tiny bundle, as a string
const is64 = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64'].includes(process.arch);

let dir;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-blob-test-'));
  // Bundled the way build.mjs does it. Non-ASCII kept as UTF-8 on purpose: the
  // blob's lengths are byte lengths, not string lengths.
  await build({
    stdin: { contents: 'const v: string = "0.0.0";\nconsole.log(`skiff version ${v}, build tëst \u2713`);\n', loader: 'ts' },
    outfile: path.join(dir, CODE_PATH),
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', minify: true, charset: 'utf8', logLevel: 'error',
  });
  SCRIPT = await fs.readFile(path.join(dir, CODE_PATH), 'utf8');
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The blob this node writes for the tiny script (paths resolve against cwd = dir). */
async function nodeBlob(disableWarning) {
  const name = `node-${disableWarning}`;
  const config = {
    main: CODE_PATH,
    output: `${name}.blob`,
    disableExperimentalSEAWarning: disableWarning,
    useSnapshot: false,
    useCodeCache: false,
  };
  await fs.writeFile(path.join(dir, `${name}.json`), JSON.stringify(config));
  const r = spawnSync(process.execPath, ['--experimental-sea-config', `${name}.json`], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `node --experimental-sea-config failed: ${r.stderr}`);
  return fs.readFile(path.join(dir, `${name}.blob`));
}

for (const disableWarning of [true, false]) {
  test(`pointerBytes 8 is byte-identical to node's own blob (disableWarning=${disableWarning})`, { skip: !is64 && 'needs a 64-bit node' }, async () => {
    const expected = await nodeBlob(disableWarning);
    const source = await fs.readFile(path.join(dir, CODE_PATH));
    assert.deepEqual(writeSeaBlob({ codePath: CODE_PATH, source, disableWarning, pointerBytes: 8 }), expected);
    // A string source is UTF-8 encoded to the same bytes.
    assert.deepEqual(writeSeaBlob({ codePath: CODE_PATH, source: SCRIPT, disableWarning, pointerBytes: 8 }), expected);
  });
}

test('pointerBytes 4 writes the 32-bit layout', () => {
  const blob = writeSeaBlob({ codePath: CODE_PATH, source: SCRIPT, disableWarning: true, pointerBytes: 4 });
  const script = Buffer.from(SCRIPT, 'utf8');
  let off = 0;
  assert.equal(blob.readUInt32LE(off), SEA_BLOB_MAGIC);
  assert.equal(SEA_BLOB_MAGIC, 0x0143da20);
  assert.equal(blob.readUInt32LE((off += 4)), 1, 'flags: disableExperimentalSEAWarning');
  assert.equal(blob.readUInt32LE((off += 4)), CODE_PATH.length, 'u32 code path length');
  off += 4;
  assert.equal(blob.toString('utf8', off, (off += CODE_PATH.length)), CODE_PATH);
  assert.equal(blob.readUInt32LE(off), script.length, 'u32 script byte length');
  assert.ok(script.length > SCRIPT.length, 'script has multi-byte characters');
  off += 4;
  assert.deepEqual(blob.subarray(off), script);
  assert.equal(blob.length, 8 + 4 + CODE_PATH.length + 4 + script.length);

  const withWarning = writeSeaBlob({ codePath: CODE_PATH, source: SCRIPT, pointerBytes: 4 });
  assert.equal(withWarning.readUInt32LE(4), 0, 'flags default to 0');
});

test('4- and 8-byte blobs differ only in the width of the length fields', () => {
  const opts = { codePath: CODE_PATH, source: SCRIPT, disableWarning: true };
  const b4 = writeSeaBlob({ ...opts, pointerBytes: 4 });
  const b8 = writeSeaBlob({ ...opts, pointerBytes: 8 });
  assert.equal(b8.length - b4.length, 8);
  const pathEnd8 = 16 + CODE_PATH.length;
  assert.deepEqual(b8.subarray(0, 8), b4.subarray(0, 8));
  assert.equal(b8.readBigUInt64LE(8), BigInt(CODE_PATH.length));
  assert.equal(b8.readBigUInt64LE(pathEnd8), BigInt(Buffer.byteLength(SCRIPT)));
  assert.deepEqual(b8.subarray(pathEnd8 + 8), b4.subarray(12 + CODE_PATH.length + 4));
});

test('rejects a bad pointer width', () => {
  assert.throws(() => writeSeaBlob({ codePath: 'a.js', source: '', pointerBytes: 2 }), TypeError);
});
