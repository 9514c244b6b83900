// The delta base stream rebuilt from tar-split records and files on disk:
// random reads and the sequential stream must equal the concatenated layer
// tars byte for byte, including contents a later entry of the same tar
// overwrote (kept aside by the extraction) and hard links.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { openBase } from '../../src/delta/base.js';
import { applyDeltaImage, deltaInfoOf, openDeltaBase, patchLayer } from '../../src/delta/apply.js';
import { encodeDelta } from '../../src/delta/encoder.js';
import { deltaLayerTar } from '../../src/delta/layer.js';
import { createLogger } from '../../src/log/logger.js';
import { applyLayer } from '../../src/store/apply.js';
import { ImageStore } from '../../src/store/images.js';
import { LayerStore } from '../../src/store/layers.js';
import { tempDir } from '../helpers/daemon.js';
import { makeLayer, type LayerEntry } from '../helpers/registry.js';

const makeTar = async (entries: LayerEntry[]): Promise<Buffer> => (await makeLayer(entries)).tar;

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const rnd = (n: number, seed: string) => createHash('shake256', { outputLength: n }).update(seed).digest();

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

test('base stream: random reads and the whole stream equal the concatenated layer tars', async () => {
  const dir = tempDir('skiff-delta-base-');
  try {
    const store = await LayerStore.open(dir, createLogger('error'));
    const t1 = await makeTar([
      { name: 'a/', type: 'directory' },
      { name: 'a/one', data: rnd(70_000, '1') },
      { name: 'a/two', data: rnd(5, '2') },
      { name: 'a/one', data: rnd(3000, 'overwritten') },
      { name: 'a/hard', type: 'link', linkname: 'a/two' },
      { name: 'a/empty' },
    ]);
    const t2 = await makeTar([{ name: 'b', data: rnd(200_000, '3') }, { name: 's', type: 'symlink', linkname: 'b' }]);
    const l1 = await applyLayer(store, Readable.from([t1]), { diffId: sha(t1), parent: null });
    const l2 = await applyLayer(store, Readable.from([t2]), { diffId: sha(t2), parent: l1.chainId });
    const base = await openBase([store.splitOf(l1.chainId), store.splitOf(l2.chainId)]);
    try {
      const all = Buffer.concat([t1, t2]);
      assert.equal(base.size, all.length);
      assert.deepEqual(base.layers, [[0, t1.length], [t1.length, all.length]]);
      assert.ok((await collect(base.stream(1000))).equals(all));
      let seed = 7;
      for (let i = 0; i < 300; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const off = seed % all.length;
        const len = Math.min(all.length - off, (seed >>> 8) % 90_000);
        assert.ok((await base.read(off, len)).equals(all.subarray(off, off + len)), `read ${off}+${len}`);
      }
      await assert.rejects(base.read(all.length - 1, 2), /outside the base/);
    } finally {
      await base.close();
    }

    // A delta image applied through applyDeltaImage (the load path) rebuilds the target.
    const images = await ImageStore.open(dir, store, createLogger('error'));
    const cfg = (ids: string[], extra = {}) => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: ids }, ...extra }));
    const baseImg = await images.put(cfg([sha(t1), sha(t2)]));
    const t3 = await makeTar([{ name: 'b', data: Buffer.concat([rnd(100_000, '3'), Buffer.from('changed'), rnd(200_000, '3').subarray(100_007)]) }]);
    const targetCfg = cfg([sha(t1), sha(t3)], { comment: 'target' });
    const stream = await openDeltaBase([{ layers: store, images }], baseImg.id);
    const parts: Buffer[] = [];
    await encodeDelta(stream, Readable.from([t3]), (b) => void parts.push(Buffer.from(b)));
    await stream.close();
    const delta = Buffer.concat(parts);
    assert.ok(delta.length < 200, `delta is ${delta.length} bytes`);
    const deltaTar = await collect(deltaLayerTar(delta.length, Readable.from([delta])));
    const deltaCfg = Buffer.from(
      JSON.stringify({ config: { Labels: { 'io.resin.delta.base': baseImg.id, 'io.resin.delta.config': targetCfg.toString() } }, rootfs: { type: 'layers', diff_ids: [sha(Buffer.alloc(1024)), sha(deltaTar)] } }),
    );
    assert.equal(deltaInfoOf(deltaCfg)?.base, baseImg.id);
    const asked: number[] = [];
    const img = await applyDeltaImage({ layers: store, images, bases: [{ layers: store, images }] }, deltaCfg, (i) => {
      asked.push(i);
      return Readable.from([i === 0 ? Buffer.alloc(1024) : deltaTar]);
    });
    assert.equal(img.id, sha(targetCfg));
    assert.deepEqual(asked, [1], 'the common layer is already there: not asked for');
    assert.ok((await collect(store.tar(img.chainIds[1] as string))).equals(t3));
    // A missing base is the documented error.
    await assert.rejects(openDeltaBase([{ layers: store, images }], 'sha256:' + '0'.repeat(64)), /loading delta base image "sha256:0{64}": /);
    // Bad delta bytes surface as "applying delta: ...".
    const broken = await collect(deltaLayerTar(8, Readable.from([Buffer.from('rs\x026\x60\x00\x00\x00', 'latin1')])));
    const s2 = await openDeltaBase([{ layers: store, images }], baseImg.id);
    await assert.rejects(collect(patchLayer(Readable.from([broken]), s2, 1)), /applying delta: invalid delta command 0x60/);
    await s2.close();
  } finally {
    rmSync(join(dir), { recursive: true, force: true });
  }
});
