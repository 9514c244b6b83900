import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NetStore } from '../../src/net/store.js';
import { tempDir } from '../helpers/daemon.js';

test('network state survives a reopen; temp files of an interrupted write are dropped', async () => {
  const root = tempDir('skiff-netstore-');
  const s = await NetStore.open(root);
  assert.equal(JSON.stringify(s.state), JSON.stringify({ networks: [], attachments: {}, endpoints: {}, ports: {} }));
  s.state.attachments.c1 = [{ network: 'n1', aliases: ['db'] }];
  s.state.ports.c1 = [{ proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080 }];
  // Writes are serialised: the last one holds everything.
  await Promise.all([s.save(), s.save(), s.save()]);
  mkdirSync(join(root, 'network'), { recursive: true });
  writeFileSync(join(root, 'network', '.state.json.tmp-0123456789ab'), '{"torn');
  const again = await NetStore.open(root);
  assert.deepEqual(again.state.attachments, { c1: [{ network: 'n1', aliases: ['db'] }] });
  assert.equal(again.state.ports.c1?.[0]?.hostPort, 8080);
  assert.deepEqual(readdirSync(join(root, 'network')), ['state.json']);
});
