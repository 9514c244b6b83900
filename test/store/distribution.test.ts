// The blob location cache push relies on: durable across a reopen, pruned
// of layers the store no longer has, and a broken file is dropped, not fatal.
import assert from 'node:assert/strict';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/log/logger.js';
import { DistributionStore } from '../../src/store/distribution.js';
import { tempDir } from '../helpers/daemon.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

test('locations survive a reopen; layers gone are pruned; forget drops one repository', async () => {
  const root = tempDir('skiff-dist-');
  try {
    const s = await DistributionStore.open(root, new Set([A, B]), createLogger('fatal'));
    await s.add([
      { diffId: A, digest: D1, size: 10, registry: 'r:5000', repo: 'x/one' },
      { diffId: A, digest: D1, size: 10, registry: 'r:5000', repo: 'x/two' },
      { diffId: B, digest: D2, size: 20, registry: 'other', repo: 'y' },
    ]);
    assert.deepEqual(readdirSync(root), ['distribution.json'], 'no temp file left');
    const again = await DistributionStore.open(root, new Set([A, B]), createLogger('fatal'));
    assert.deepEqual(again.get(A, 'r:5000'), [{ digest: D1, size: 10, registry: 'r:5000', repos: ['x/one', 'x/two'] }]);
    assert.deepEqual(again.get(A, 'other'), []);
    await again.forget(A, D1, 'r:5000', 'x/one');
    const third = await DistributionStore.open(root, new Set([A]), createLogger('fatal'));
    assert.deepEqual(third.get(A, 'r:5000')[0]?.repos, ['x/two']);
    assert.deepEqual(third.get(B, 'other'), [], 'a layer the store lost is pruned');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a torn or foreign file is dropped with a warning and the store starts empty', async () => {
  const root = tempDir('skiff-dist-');
  try {
    writeFileSync(join(root, 'distribution.json'), '{"sha256:');
    const lines: string[] = [];
    const s = await DistributionStore.open(root, new Set([A]), createLogger('info', { write: (l: string) => lines.push(l) }));
    assert.deepEqual(s.get(A, 'r'), []);
    assert.match(lines.join(''), /dropping unreadable blob location cache/);
    await s.add([{ diffId: A, digest: D1, size: 1, registry: 'r', repo: 'z' }]);
    assert.equal((await DistributionStore.open(root, new Set([A]), createLogger('fatal'))).get(A, 'r').length, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
