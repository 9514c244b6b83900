import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, fstatSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { directIoEnabled, setDirectIo, writeFileDirect } from '../../src/store/directio.js';
import { tempDir } from '../helpers/daemon.js';
import { WritebackPacer, type Pacer } from '../../src/store/writeback.js';

const noPacing: Pacer = { wrote: async () => undefined, wroteDirect: async () => undefined };
const data = (n: number, seed: string) => createHash('shake256', { outputLength: n }).update(seed).digest();

async function* chunks(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** Pages of the file in the page cache, from util-linux's fincore. */
function cachedPages(path: string): number {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'PAGES', path], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

const SIZES = [64 * 1024, 64 * 1024 + 1, 68 * 1024 - 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 512 * 1024 + 4096, 3 * 1024 * 1024 + 123];

test('O_DIRECT bodies are byte-exact for sizes around the alignment and slab edges, whatever the chunking', async () => {
  const dir = tempDir();
  try {
    setDirectIo(true);
    for (const size of SIZES) {
      for (const chunk of [777, 65536, 300_000]) {
        const want = data(size, `${size}/${chunk}`);
        const path = join(dir, `f-${size}-${chunk}`);
        const paced = { cache: 0, direct: 0 };
        const d = await writeFileDirect(path, chunks(want, chunk), 0o640, {
          wrote: async (n) => void (paced.cache += n),
          wroteDirect: async (n) => void (paced.direct += n),
        });
        assert.ok(d, 'O_DIRECT is usable on the test filesystem');
        try {
          // The descriptor handed back is the O_DIRECT one (fdinfo flags are octal).
          const flags = parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${d.fd}`, 'utf8'))?.[1] ?? '0', 8);
          assert.ok((flags & (constants.O_DIRECT as number)) !== 0, 'opened with O_DIRECT');
          assert.equal(fstatSync(d.fd).mode & 0o777, 0o640);
        } finally {
          closeSync(d.fd);
        }
        assert.equal(d.written, size);
        // Only the unaligned tail went through the page cache.
        assert.deepEqual(paced, { cache: size % 4096, direct: size - (size % 4096) }, `paced bytes for ${size}`);
        assert.ok(cachedPages(path) <= 1, `at most the tail page is cached for ${size}`);
        assert.ok(readFileSync(path).equals(want), `content of ${size} in ${chunk}-byte chunks`);
      }
    }
    assert.equal(directIoEnabled(), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with O_DIRECT off nothing is created or read, so the caller can write the file itself', async () => {
  const dir = tempDir();
  try {
    setDirectIo(false);
    let read = false;
    async function* body(): AsyncGenerator<Buffer> {
      read = true;
      yield Buffer.alloc(70_000);
    }
    const path = join(dir, 'f');
    assert.equal(await writeFileDirect(path, body(), 0o644, noPacing), undefined);
    assert.equal(read, false);
    assert.throws(() => readFileSync(path), { code: 'ENOENT' });
  } finally {
    setDirectIo(true);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an existing path is refused (O_EXCL) and a failing body leaves the descriptor closed', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'f');
    const d = await writeFileDirect(path, chunks(data(70_000, 'a'), 4096), 0o644, noPacing);
    assert.ok(d);
    closeSync(d.fd);
    await assert.rejects(writeFileDirect(path, chunks(data(70_000, 'b'), 4096), 0o644, noPacing), { code: 'EEXIST' });
    async function* broken(): AsyncGenerator<Buffer> {
      yield data(300_000, 'c');
      throw new Error('connection reset');
    }
    const g = join(dir, 'g');
    await assert.rejects(writeFileDirect(g, broken(), 0o644, noPacing), /connection reset/);
    const open = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === g;
      } catch {
        return false; // closed meanwhile
      }
    });
    assert.deepEqual(open, [], 'no descriptor of the file is left open');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('O_DIRECT bytes make the pacer sync when the machine is dirty anyway (a filesystem that buffers them)', async () => {
  const dir = tempDir();
  try {
    const dirty = () => {
      const m = readFileSync('/proc/meminfo', 'latin1');
      const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(m)?.[1] ?? 0);
      return (kib('Dirty') + kib('Writeback')) * 1024;
    };
    // 48 MiB through the page cache, as such a filesystem would leave them.
    writeFileSync(join(dir, 'buffered'), Buffer.alloc(48 * 2 ** 20, 1));
    assert.ok(dirty() > 16 * 2 ** 20, 'the data is dirty before the pacer looks');
    const pacer = new WritebackPacer(dir);
    await pacer.wroteDirect(4 * 2 ** 20); // below the check interval: nothing happens
    await pacer.wroteDirect(4 * 2 ** 20);
    await pacer.idle();
    assert.ok(dirty() < 16 * 2 ** 20, `synced: ${dirty()} bytes dirty after`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
