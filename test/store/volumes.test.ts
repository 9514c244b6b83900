// The volume store without a daemon: layout, durable records, options, the
// per-name lock, recovery, and the service's in-use rules.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createLogger } from '../../src/log/logger.js';
import { checkLocalOptions, VolumeStore } from '../../src/store/volumes.js';
import { VolumeService } from '../../src/volumes/service.js';

const logger = createLogger('fatal');
const roots: string[] = [];
const newRoot = () => {
  const r = mkdtempSync(join(tmpdir(), 'skiff-volstore-'));
  roots.push(r);
  return r;
};
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

test('create is durable and idempotent; remove deletes data but never a bind device', async () => {
  const root = newRoot();
  const s = await VolumeStore.open(root, logger);
  const { volume, created } = await s.create('v1', { labels: { a: 'b' } });
  assert.equal(created, true);
  assert.deepEqual(JSON.parse(readFileSync(join(root, 'volumes', 'v1', 'volume.json'), 'utf8')), volume);
  assert.equal((await s.create('v1', { labels: { other: 'x' } })).created, false);
  assert.deepEqual(s.get('v1')?.Labels, { a: 'b' });
  writeFileSync(join(s.mountpoint('v1'), 'f'), 'data');
  assert.equal(await s.size(volume), 4);
  const dev = join(root, 'device');
  mkdirSync(dev);
  writeFileSync(join(dev, 'keep'), 'x');
  await s.create('bv', { options: { type: 'none', o: 'bind', device: dev } });
  assert.equal(s.dataPath(s.get('bv')!), dev);
  await s.remove('v1');
  await s.remove('bv');
  assert.deepEqual(readdirSync(join(root, 'volumes')), []);
  assert.ok(existsSync(join(dev, 'keep')));
  await assert.rejects(s.remove('v1'), /get v1: no such volume/);
});

test('options: empty or bind-style only', () => {
  checkLocalOptions(null);
  checkLocalOptions({});
  checkLocalOptions({ type: 'none', o: 'bind', device: '/srv' });
  checkLocalOptions({ o: 'rbind', device: '/srv' });
  assert.throws(() => checkLocalOptions({ foo: 'x' }), /invalid option: "foo"/);
  assert.throws(() => checkLocalOptions({ type: 'nfs', o: 'addr=1.2.3.4', device: ':/x' }), /type=nfs is not supported/);
  assert.throws(() => checkLocalOptions({ type: 'none', device: '/srv' }), /without o=bind/);
  assert.throws(() => checkLocalOptions({ type: 'none', o: 'bind' }), /missing device/);
  assert.throws(() => checkLocalOptions({ type: 'none', o: 'bind', device: 'rel' }), /absolute path/);
  assert.throws(() => checkLocalOptions({ size: '10m' }), /size is not supported/);
});

test('recovery: half-made and half-removed volumes go, records are reloaded, hand-made directories adopted', async () => {
  const root = newRoot();
  const s = await VolumeStore.open(root, logger);
  await s.create('kept', { labels: { k: 'v' } });
  const vdir = join(root, 'volumes');
  mkdirSync(join(vdir, '.creating-x-0123456789ab', '_data'), { recursive: true });
  mkdirSync(join(vdir, '.removing-y-0123456789ab', '_data'), { recursive: true });
  writeFileSync(join(vdir, 'kept', '.volume.json.tmp-0123456789ab'), 'torn');
  mkdirSync(join(vdir, 'byhand', '_data'), { recursive: true });
  writeFileSync(join(vdir, 'byhand', '_data', 'f'), 'x');
  const s2 = await VolumeStore.open(root, logger);
  assert.deepEqual(readdirSync(vdir).sort(), ['byhand', 'kept']);
  assert.deepEqual(readdirSync(join(vdir, 'kept')).sort(), ['_data', 'volume.json']);
  assert.deepEqual(s2.get('kept')?.Labels, { k: 'v' });
  assert.equal(s2.get('byhand')?.Driver, 'local');
  assert.ok(existsSync(join(vdir, 'byhand', 'volume.json')));
});

test('service: in use is 409 (force too), pending references count, prune keeps used volumes', async () => {
  const s = await VolumeStore.open(newRoot(), logger);
  const svc = new VolumeService(s);
  const users = new Map<string, string[]>();
  svc.setUsers((n) => users.get(n) ?? []);
  await svc.create({ Name: 'used' });
  await svc.create({ Name: 'free', Labels: { tier: 'x' } });
  users.set('used', ['c1']);
  await assert.rejects(svc.remove('used', false), /remove used: volume is in use - \[c1\]/);
  await assert.rejects(svc.remove('used', true), /volume is in use/);
  await svc.remove('nonex', true);
  await assert.rejects(svc.remove('nonex', false), /get nonex: no such volume/);
  // A container being created holds what it acquired until it settles.
  await svc.acquire('pending', 'c2');
  await assert.rejects(svc.remove('pending', false), /in use - \[c2\]/);
  svc.settle('c2');
  assert.deepEqual(svc.list(new Map([['dangling', ['true']]])).Volumes.map((v) => v.Name), ['free', 'pending']);
  assert.deepEqual((await svc.prune(new Map([['label', ['tier=x']]]))).VolumesDeleted, ['free']);
  assert.deepEqual((await svc.prune(new Map())).VolumesDeleted, ['pending']);
  assert.deepEqual(svc.list(new Map()).Volumes.map((v) => v.Name), ['used']);
  assert.throws(() => svc.list(new Map([['colour', ['red']]])), /invalid filter 'colour'/);
  assert.throws(() => svc.list(new Map([['dangling', ['maybe']]])), /invalid filter 'dangling=\[maybe\]'/);
  // Concurrent creates of one name make one volume.
  const all = await Promise.all([1, 2, 3].map(() => svc.create({ Name: 'race' })));
  assert.equal(new Set(all.map((v) => v.CreatedAt)).size, 1);
});
