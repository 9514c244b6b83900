// Every built artifact runs on its architecture: natively for x64, under
// qemu-user for the ARM ones (armv6l with an ARM1176 CPU, as on a Pi Zero).
// Beyond `--version`, each starts as a daemon and answers its own client,
// so node:http, unix sockets and the data-root lock are exercised per arch,
// and pulls an image: undici, zlib, hashing and the O_DIRECT writer (whose
// flag has another value on ARM) in that arch's Node.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { docker, ROOT, run, startDaemon } from '../helpers/daemon.js';
import { makeLayer, startRegistry } from '../helpers/registry.js';

interface Target {
  arch: string;
  prefix: string[];
  goArch: string;
  variant?: string;
  machine: RegExp;
}

const TARGETS: Target[] = [
  { arch: 'x64', prefix: [], goArch: 'amd64', machine: /^x86_64$/ },
  { arch: 'arm64', prefix: ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'], goArch: 'arm64', machine: /^aarch64$/ },
  { arch: 'armv7l', prefix: ['qemu-arm-static', '-L', '/usr/arm-linux-gnueabihf'], goArch: 'arm', variant: 'v7', machine: /^armv7l$/ },
  { arch: 'armv6l', prefix: ['qemu-arm-static', '-cpu', 'arm1176', '-L', '/usr/arm-linux-gnueabihf'], goArch: 'arm', variant: 'v6', machine: /^armv[67]/ },
];

const dist = join(ROOT, 'dist');

test('SHA256SUMS lists every artifact with its digest', () => {
  const sums = readFileSync(join(dist, 'SHA256SUMS'), 'utf8').trim().split('\n');
  for (const line of sums) {
    const [digest, name] = line.split(/\s+/);
    assert.ok(name && digest);
    const actual = createHash('sha256').update(readFileSync(join(dist, name))).digest('hex');
    assert.equal(actual, digest, name);
  }
  for (const t of TARGETS) {
    if (existsSync(join(dist, `skiff-linux-${t.arch}`))) assert.ok(sums.some((l) => l.endsWith(` skiff-linux-${t.arch}`)), t.arch);
  }
});

test('the x64 executable holds at most ~1.5 MB of skiff on top of Node', () => {
  const bundle = readFileSync(join(dist, 'skiff.js')).length;
  assert.ok(bundle < 1.5 * 1024 * 1024, `bundle is ${bundle} bytes`);
});

for (const t of TARGETS) {
  const bin = join(dist, `skiff-linux-${t.arch}`);
  const built = existsSync(bin);
  describe(`skiff-linux-${t.arch}`, { skip: built ? false : `not built (${t.arch === 'armv6l' ? 'needs a user-supplied Node binary' : 'run npm run build'})` }, () => {
    test('--version runs', async () => {
      const [cmd, ...pre] = t.prefix.length ? t.prefix : [bin];
      const r = await run(cmd as string, t.prefix.length ? [...pre, bin, '--version'] : ['--version'], { timeout: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^skiff version \S+, build \S+/);
    });

    test('daemon and client of the same arch talk', { timeout: 180_000 }, async () => {
      const d = await startDaemon({ binary: bin, prefix: t.prefix, readyTimeoutMs: 120_000 });
      try {
        const [cmd, ...pre] = t.prefix.length ? t.prefix : [bin];
        const args = [...(t.prefix.length ? [...pre, bin] : []), '-H', d.host, 'version', '--format', 'json'];
        const r = await run(cmd as string, args, { timeout: 120_000 });
        assert.equal(r.code, 0, r.stderr);
        const v = JSON.parse(r.stdout);
        assert.equal(v.Client.Arch, t.goArch);
        assert.equal(v.Server.Arch, t.goArch);
        assert.equal(v.Server.ApiVersion, '1.41');
        const info = await run('docker', ['-H', d.host, 'info', '--format', '{{.Architecture}}'], { timeout: 60_000 });
        assert.match(info.stdout.trim(), t.machine);

        // A pull of this arch's image, then every layer rebuilt and checked against its DiffID.
        const reg = await startRegistry();
        try {
          const big = Buffer.alloc(300 * 1024 + 5);
          for (let i = 0; i < big.length; i++) big[i] = (i * 7919) >>> 3;
          const layer = await makeLayer([
            { name: 'data/', type: 'directory' },
            { name: 'data/big.bin', data: big },
            ...Array.from({ length: 20 }, (_, i) => ({ name: `data/small${i}.txt`, data: `small file ${i}\n`.repeat(i + 1) })),
          ]);
          await reg.pushImage('test/arch', 'latest', [layer], { os: 'linux', architecture: t.goArch, ...(t.variant ? { variant: t.variant } : {}) });
          const pull = await docker(d.host, ['pull', `${reg.host}/test/arch`]);
          assert.equal(pull.code, 0, pull.stderr + d.logs());
          const check = await run(cmd as string, [...(t.prefix.length ? [...pre, bin] : []), '-H', d.host, 'check'], { timeout: 120_000 });
          assert.equal(check.code, 0, check.stdout + check.stderr);
          assert.match(check.stdout, /^ok +sha256:[0-9a-f]{64}\n1 layers checked, 0 broken\n$/);
        } finally {
          await reg.stop();
        }
        assert.equal(await d.stop(), 0, d.logs());
      } finally {
        d.cleanup();
      }
    });
  });
}
